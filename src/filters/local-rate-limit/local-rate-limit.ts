// local_rate_limit: token buckets per key and an in-flight limit per key, in this sidecar's memory (no coordination
// with other sidecars). Over the limit: 429 RL with Retry-After and the IETF RateLimit-Policy / RateLimit headers.
import { whenBodyDone } from '../../core/body.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { ProxyError } from '../../core/errors.js';
import type { Layer, ProxyRequest } from '../../core/service.js';
import type { Counter } from '../../observability/metrics.js';
import type { FilterFactory } from '../filter.js';
import { InFlight, TokenBuckets, type Decision } from './bucket.js';
import type { LocalRateLimitConfig } from './schema.js';

/** The policy name in RateLimit-Policy / RateLimit (draft-ietf-httpapi-ratelimit-headers). */
const POLICY = 'local';

/** The key of a request, as the config says; '' when the request has none (those share one bucket). */
export function keyOf(cfg: LocalRateLimitConfig['key'], req: ProxyRequest): string {
  switch (cfg.source) {
    case 'client_ip':
      return req.context.downstreamAddress;
    case 'header':
      return req.headers.get(cfg.name!) ?? '';
    case 'jwt_claim':
      return claimKey(req.context.jwtClaims?.[cfg.name!]);
    case 'api_key':
      return req.context.apiKeyName ?? '';
    case 'peer_identity':
      return req.context.peerIdentity ?? '';
    case 'none':
      return '';
  }
}

/** A verified claim as a bucket key: strings as they are, lists joined by spaces, anything else as JSON. */
function claimKey(claim: unknown): string {
  if (claim === undefined || claim === null) return '';
  if (typeof claim === 'string') return claim;
  if (Array.isArray(claim)) return claim.map(String).join(' ');
  return JSON.stringify(claim);
}

/** The IETF RateLimit-Policy / RateLimit header pairs for a decision; `fullMs`: time to refill the whole burst. */
export function rateLimitHeaders(policy: string, burst: number, fullMs: number): (d: Decision) => string[] {
  const policyHeader = `"${policy}";q=${burst};w=${Math.max(1, Math.ceil(fullMs / 1000))}`;
  return (d) => ['ratelimit-policy', policyHeader, 'ratelimit', `"${policy}";r=${d.remaining};t=${Math.ceil(d.resetMs / 1000)}`];
}

/** The 429 (flag RL) both limiters answer: Retry-After in whole seconds, at least 1, and the RateLimit headers. */
export function overLimit(limit: string, retryAfterMs: number, rateHeaders: readonly string[]): ProxyError {
  const retryAfter = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  return new ProxyError('RL', `over the ${limit}; retry after ${retryAfter} s`, { headers: ['retry-after', retryAfter, ...rateHeaders] });
}

export interface RateLimitCounters {
  readonly allowed: Counter;
  readonly limited: Counter;
  readonly overConcurrency: Counter;
}

export function localRateLimitLayer(cfg: LocalRateLimitConfig, counters: RateLimitCounters, clock: Clock = systemClock): Layer {
  const buckets = new TokenBuckets({ burst: cfg.burst, tokensPerFill: cfg.tokens_per_fill, fillIntervalMs: cfg.fill_interval, maxKeys: cfg.max_keys });
  const inFlight = cfg.max_in_flight > 0 ? new InFlight(cfg.max_in_flight) : undefined;
  const rateHeaders = rateLimitHeaders(POLICY, cfg.burst, (cfg.burst * cfg.fill_interval) / cfg.tokens_per_fill);
  return (next) => async (req) => {
    const key = keyOf(cfg.key, req);
    const d = buckets.take(key, clock.now());
    if (!d.allowed) {
      counters.limited.inc();
      req.body?.resume();
      throw overLimit(`local rate limit of ${cfg.burst} burst, ${cfg.tokens_per_fill} per ${cfg.fill_interval} ms`, d.retryAfterMs, rateHeaders(d));
    }
    if (inFlight !== undefined && !inFlight.acquire(key)) {
      counters.overConcurrency.inc();
      req.body?.resume();
      throw new ProxyError('RL', `over max_in_flight ${inFlight.max} for this client`, { headers: ['retry-after', '1'] });
    }
    counters.allowed.inc();
    let res;
    try {
      res = await next(req);
    } catch (e) {
      if (inFlight !== undefined) inFlight.release(key);
      throw e;
    }
    if (inFlight !== undefined) whenBodyDone(res.body, () => inFlight.release(key));
    if (cfg.headers) {
      const h = rateHeaders(d);
      for (let i = 0; i < h.length; i += 2) res.headers.set(h[i]!, h[i + 1]!);
    }
    return res;
  };
}

export const localRateLimitFilter: FilterFactory<LocalRateLimitConfig> = {
  type: 'local_rate_limit',
  create: (cfg, deps) => {
    const labels = (result: string) => ({ listener: deps.listener, route: deps.route, filter: 'local_rate_limit', result });
    return localRateLimitLayer(cfg, {
      allowed: deps.metrics.rateLimitDecisions.get(labels('allowed')),
      limited: deps.metrics.rateLimitDecisions.get(labels('limited')),
      overConcurrency: deps.metrics.rateLimitDecisions.get(labels('over_concurrency')),
    });
  },
};
