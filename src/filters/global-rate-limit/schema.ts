// The global_rate_limit filter's config schema.
import { z } from 'zod';
import { duration } from '../../config/primitives.js';
import { defineSpec } from '../filter.js';
import { rateLimitKey } from '../local-rate-limit/schema.js';

const globalRateLimitConfig = z
  .strictObject({
    redis: z.strictObject({
      url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL').meta({ description: 'The Redis every sidecar sharing the limit uses, e.g. redis://127.0.0.1:6379/0.' }),
      key_prefix: z.string().default('sidecar:rl:').meta({ description: 'Prefix of every Redis key; sidecars with the same prefix and key share a limit.' }),
      timeout: duration.default(50).meta({ description: 'Most time one Redis call may take; past it the call counts as a failure (failure_mode applies).' }),
    }),
    key: rateLimitKey.default({ source: 'client_ip' }),
    burst: z.number().int().min(1).max(1_000_000).default(100).meta({ description: 'Most requests a key may send at once, across all sidecars.' }),
    rate: z.number().int().min(1).max(1_000_000).default(100).meta({ description: 'Sustained requests per period, across all sidecars.' }),
    period: duration.default(1000).meta({ description: 'The period of rate.' }),
    failure_mode: z.enum(['allow', 'deny']).default('allow').meta({ description: 'Redis unreachable or slower than timeout: allow (forward, counted) or deny (status_on_error with flag RLSE).' }),
    status_on_error: z.union([z.literal(429), z.literal(503)]).default(503).meta({ description: 'Status when failing closed.' }),
    headers: z.boolean().default(true).meta({ description: 'Send RateLimit-Policy and RateLimit headers on every answer decided by Redis, not only on 429.' }),
    local_precheck: z
      .strictObject({
        lease: z.number().int().min(2).max(100_000).default(10).meta({ description: 'Most tokens one Redis call takes for a key (as many as the bucket holds, at least one); the rest are spent here without a round trip.' }),
        lease_ttl: duration.default(1000).meta({ description: "Unspent tokens of a lease are dropped this long after Redis granted them (bounds how late they are spent, see docs/rate-limits.md)." }),
        max_keys: z.number().int().min(1).max(10_000_000).default(10_000).meta({ description: 'Most keys holding a lease or a remembered refusal (LRU).' }),
        cache_denials: z.boolean().default(true).meta({ description: "A key Redis refused is refused here until its Retry-After, without asking Redis (GCRA cannot admit it sooner)." }),
      })
      .optional()
      .meta({ description: 'Off when absent (every request asks Redis). Leases tokens in batches so clearly allowed traffic skips the Redis round trip; admits no more than Redis granted, but up to lease_ttl later.' }),
  })
  .refine((c) => c.period > 0, { message: 'period must be over 0', path: ['period'] })
  .refine((c) => c.local_precheck === undefined || c.local_precheck.lease_ttl > 0, { message: 'lease_ttl must be over 0', path: ['local_precheck', 'lease_ttl'] });

export type GlobalRateLimitConfig = z.output<typeof globalRateLimitConfig>;

export const globalRateLimitSpec = defineSpec({
  type: 'global_rate_limit',
  description: 'A rate limit shared by many sidecars through Redis (GCRA in one atomic Lua call per request, or per lease of tokens with local_precheck), with a timeout on every call and fail-open or fail-closed (RLSE) when Redis is unreachable.',
  schema: globalRateLimitConfig,
  defaults: { redis: { url: 'redis://127.0.0.1:9', timeout: '20ms' }, failure_mode: 'allow' },
});
