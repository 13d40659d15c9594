// The body-limit filter's config schema.
import { z } from 'zod';
import { size } from '../../config/primitives.js';
import { defineSpec } from '../filter.js';

const bodyLimitConfig = z.strictObject({ max_bytes: size.default(0).meta({ description: 'Largest request body accepted (0 = unlimited).' }) });
export type BodyLimitConfig = z.output<typeof bodyLimitConfig>;

export const bodyLimitSpec = defineSpec({
  type: 'body_limit',
  description: 'Refuse request bodies over a size (413 TL), before forwarding when Content-Length says so.',
  schema: bodyLimitConfig,
  defaults: {},
});
