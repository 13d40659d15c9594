// The local_rate_limit filter's config schema.
import { z } from 'zod';
import { duration, headerName } from '../../config/primitives.js';
import { defineSpec } from '../filter.js';

export const rateLimitKey = z
  .strictObject({
    source: z
      .enum(['client_ip', 'header', 'jwt_claim', 'api_key', 'peer_identity', 'none'])
      .default('client_ip')
      .meta({ description: 'What a bucket is per: the downstream address, a request header, a verified JWT claim (set by the JWT filter), the API-key name, the mTLS peer identity, or none (one bucket for all).' }),
    name: z.string().min(1).optional().meta({ description: 'The header name (source header) or claim name (source jwt_claim, e.g. sub).' }),
  })
  .refine((k) => (k.source === 'header' || k.source === 'jwt_claim') === (k.name !== undefined), { message: 'name is required for source header and jwt_claim, and only for them' })
  .refine((k) => k.source !== 'header' || headerName.safeParse(k.name).success, { message: 'name must be a header name' });

const localRateLimitConfig = z.strictObject({
  key: rateLimitKey.default({ source: 'client_ip' }),
  burst: z.number().int().min(1).max(1_000_000).default(100).meta({ description: 'Most requests a key may send at once (bucket size); a new key starts full.' }),
  tokens_per_fill: z.number().int().min(1).max(1_000_000).default(100).meta({ description: 'Tokens added every fill_interval, continuously.' }),
  fill_interval: duration.default(1000).meta({ description: 'The refill period of tokens_per_fill.' }),
  max_keys: z.number().int().min(1).max(10_000_000).default(100_000).meta({ description: 'Most keys tracked (LRU); a forgotten key starts full again, so memory stays bounded under a flood of distinct keys.' }),
  max_in_flight: z.number().int().min(0).default(0).meta({ description: 'Most requests in flight per key (0 = no concurrency limit); over it: 429 RL at once.' }),
  headers: z.boolean().default(true).meta({ description: 'Send RateLimit-Policy and RateLimit headers (IETF draft) on every answer, not only on 429.' }),
}).refine((c) => c.fill_interval > 0, { message: 'fill_interval must be over 0', path: ['fill_interval'] });
export type LocalRateLimitConfig = z.output<typeof localRateLimitConfig>;

export const localRateLimitSpec = defineSpec({
  type: 'local_rate_limit',
  description: 'Token buckets per key (client IP, header, JWT claim, API key, peer identity) and a per-key in-flight limit: 429 RL with Retry-After and RateLimit headers.',
  schema: localRateLimitConfig,
  defaults: {},
});
