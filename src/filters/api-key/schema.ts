// The api_key filter's config schema.
import { z } from 'zod';
import { headerName } from '../../config/primitives.js';
import { defineSpec } from '../filter.js';

export const apiKeyConfig = z
  .strictObject({
    keys_file: z.string().min(1).optional().meta({
      description: 'File of `name key` lines (# comments); a key may be stored as `sha256:<hex>` so the file holds no secret. Read when the config is loaded.',
    }),
    keys_env: z
      .array(z.strictObject({ name: z.string().min(1), env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/) }))
      .optional()
      .meta({ description: 'Keys from environment variables (the value is the key, or `sha256:<hex>`); an unset variable is a config error.' }),
    header: headerName.default('x-api-key').meta({ description: 'Request header carrying the key (removed before forwarding unless forward_key).' }),
    query: z.string().min(1).optional().meta({ description: 'Also read the key from this query parameter.' }),
    optional: z.boolean().default(false).meta({ description: 'Let requests without a key through (anonymous); a present key must be valid.' }),
    forward_key: z.boolean().default(false).meta({ description: 'Send the key upstream too (the header, and the query parameter when `query` is set; without it both are removed).' }),
    name_header: headerName.optional().meta({ description: 'Send the key name upstream in this header (a client-sent copy is removed first).' }),
  })
  .refine((c) => c.keys_file !== undefined || c.keys_env !== undefined, { message: 'api_key needs keys_file or keys_env' });
export type ApiKeyConfig = z.output<typeof apiKeyConfig>;

export const apiKeySpec = defineSpec({
  type: 'api_key',
  description: 'API keys from a file or the environment, compared as SHA-256 hashes in constant time; 401 when missing or unknown.',
  schema: apiKeyConfig,
  defaults: { keys_file: '/dev/null' },
});
