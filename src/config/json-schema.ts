// The editor-facing JSON Schema, generated from the one zod schema (input side: what users write in YAML).
import { z } from 'zod';
import { configSchema } from './schema.js';

export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, $id: 'https://sidecar.dev/schema/sidecar.schema.json', title: 'sidecar configuration' };
}
