// global_rate_limit: one limit shared by every sidecar pointing at the same Redis, decided by GCRA in one atomic Lua
// call per request (gcra.ts). Redis is I/O on the request path, so every call has a timeout, and a failure (down,
// slow, still connecting) takes the configured failure mode instead of blocking: allow (forward, counted) or deny (RLSE).
import { createHash } from 'node:crypto';
import { ProxyError } from '../../core/errors.js';
import type { Layer } from '../../core/service.js';
import type { Counter } from '../../observability/metrics.js';
import type { FilterFactory } from '../filter.js';
import { keyOf, overLimit, rateLimitHeaders } from '../local-rate-limit/local-rate-limit.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { GCRA_LUA, type GcraLimit } from './gcra.js';
import { LeaseTable } from './lease.js';
import type { GlobalRateLimitConfig } from './schema.js';

const POLICY = 'global';

export interface StoreDecision {
  readonly allowed: boolean;
  readonly remaining: number;
  readonly retryAfterMs: number;
  readonly resetMs: number;
}

/** Where the shared state lives: Redis in production, anything that keeps the contract in unit tests. */
export interface GcraStore {
  /**
   * One request's worth, or with `lease` as many as fit up to it (gcraLease): `granted` says how many (0: refused).
   * Rejects when the store cannot answer (the filter applies failure_mode).
   */
  take(key: string, limit: GcraLimit, lease?: number): Promise<StoreDecision & { readonly granted: number }>;
}

export interface GlobalRateLimitCounters {
  readonly allowed: Counter;
  readonly limited: Counter;
  readonly errorAllowed: Counter;
  readonly errorDenied: Counter;
  /** Decided by the local pre-check without a Redis call. */
  readonly localAllowed: Counter;
  readonly localLimited: Counter;
}

/** Rejects after `ms` unless `p` settles first (belt and braces over ioredis's own commandTimeout). */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis call over ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export function globalRateLimitLayer(cfg: GlobalRateLimitConfig, store: GcraStore, counters: GlobalRateLimitCounters, clock: Pick<Clock, 'now'> = systemClock): Layer {
  const limit: GcraLimit = { burst: cfg.burst, intervalMs: cfg.period / cfg.rate };
  const rateHeaders = rateLimitHeaders(POLICY, cfg.burst, cfg.burst * limit.intervalMs);
  const pre = cfg.local_precheck;
  const table = pre ? new LeaseTable({ lease: pre.lease, ttlMs: pre.lease_ttl, maxKeys: pre.max_keys, cacheDenials: pre.cache_denials }, clock) : undefined;
  /** One lease call per key at a time: requests that find none held wait for the one under way, then spend from it. */
  const leasing = new Map<string, Promise<unknown>>();

  const ask = (key: string): Promise<StoreDecision> => {
    if (table === undefined) return store.take(key, limit);
    const lease = pre!.lease;
    const call = async (): Promise<StoreDecision> => {
      for (let under = leasing.get(key); under !== undefined; under = leasing.get(key)) {
        await under.catch(() => {});
        const held = table.take(key);
        if (held !== undefined) return held;
      }
      const p = store.take(key, limit, lease).then((d) => {
        table.record(key, d.granted, d);
        return d;
      });
      leasing.set(key, p);
      void p.finally(() => leasing.get(key) === p && leasing.delete(key)).catch(() => {});
      return p;
    };
    return call();
  };

  return (next) => async (req) => {
    const key = cfg.redis.key_prefix + keyOf(cfg.key, req);
    let d: StoreDecision | undefined = table?.take(key);
    const local = d !== undefined;
    if (d === undefined) {
      try {
        d = await withTimeout(ask(key), cfg.redis.timeout);
      } catch (e) {
        if (cfg.failure_mode === 'allow') {
          counters.errorAllowed.inc();
          return next(req);
        }
        counters.errorDenied.inc();
        req.body?.resume();
        throw new ProxyError('RLSE', `global rate limit store unreachable (${e instanceof Error ? e.message : String(e)}); failing closed`, { status: cfg.status_on_error, headers: ['retry-after', '1'] });
      }
    }
    if (!d.allowed) {
      (local ? counters.localLimited : counters.limited).inc();
      req.body?.resume();
      throw overLimit(`global rate limit of ${cfg.burst} burst, ${cfg.rate} per ${cfg.period} ms`, d.retryAfterMs, rateHeaders(d));
    }
    (local ? counters.localAllowed : counters.allowed).inc();
    const res = await next(req);
    if (cfg.headers) {
      const h = rateHeaders(d);
      for (let i = 0; i < h.length; i += 2) res.headers.set(h[i]!, h[i + 1]!);
    }
    return res;
  };
}

type RedisClient = import('ioredis').Redis;

/**
 * A GcraStore on ioredis, loaded on first use so the CLI never loads ioredis when no route has this filter. No
 * offline queue: while disconnected a call fails at once (failure_mode) instead of waiting. Reconnection is ours,
 * on an unref'd timer, so a sidecar (or a test) whose Redis is gone can still exit.
 */
export function redisStore(url: string, timeoutMs: number): GcraStore & { close(): void } {
  let closed = false;
  let client: RedisClient | undefined;
  const ready: Promise<RedisClient> = import('ioredis').then(({ Redis }) => {
    const c = new Redis(url, { enableOfflineQueue: false, commandTimeout: timeoutMs, connectTimeout: Math.max(timeoutMs, 1000), maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    c.on('error', () => {}); // counted per request through failure_mode; an unhandled 'error' would crash the process
    let backoff = 100;
    const connect = (): void => {
      if (closed) return;
      c.connect().then(
        () => (backoff = 100),
        () => {},
      );
    };
    c.on('end', () => {
      if (closed) return;
      setTimeout(connect, backoff).unref();
      backoff = Math.min(backoff * 2, 2000);
    });
    connect();
    client = c;
    return c;
  });
  ready.catch(() => {});
  return {
    async take(key, limit, lease) {
      const c = client ?? (await ready);
      const args = [String(limit.intervalMs), String(limit.burst), String(lease ?? 1), lease === undefined ? '0' : '1'];
      // EVALSHA with the script's digest; only a Redis that lost its script cache (restarted) is sent the source again.
      let r: [number, number, number, number];
      try {
        r = (await c.evalsha(GCRA_SHA, 1, key, ...args)) as typeof r;
      } catch (e) {
        if (!(e instanceof Error && e.message.startsWith('NOSCRIPT'))) throw e;
        r = (await c.eval(GCRA_LUA, 1, key, ...args)) as typeof r;
      }
      return { allowed: r[0] >= 1, granted: r[0], remaining: r[1], retryAfterMs: r[2], resetMs: r[3] };
    },
    close() {
      closed = true;
      client?.disconnect();
    },
  };
}

const GCRA_SHA = createHash('sha1').update(GCRA_LUA).digest('hex');

/**
 * One store (one connection) per Redis URL and timeout for the life of the process: the filter is built anew for
 * every config snapshot, and a reload must neither open a second connection nor drop the warm one.
 */
const stores = new Map<string, GcraStore>();
function sharedRedisStore(url: string, timeoutMs: number): GcraStore {
  const k = `${timeoutMs} ${url}`;
  let s = stores.get(k);
  if (s === undefined) {
    s = redisStore(url, timeoutMs);
    stores.set(k, s);
  }
  return s;
}

export const globalRateLimitFilter: FilterFactory<GlobalRateLimitConfig> = {
  type: 'global_rate_limit',
  create: (cfg, deps) => {
    const labels = (result: string) => ({ listener: deps.listener, route: deps.route, filter: 'global_rate_limit', result });
    return globalRateLimitLayer(cfg, sharedRedisStore(cfg.redis.url, cfg.redis.timeout), {
      allowed: deps.metrics.rateLimitDecisions.get(labels('allowed')),
      limited: deps.metrics.rateLimitDecisions.get(labels('limited')),
      errorAllowed: deps.metrics.rateLimitDecisions.get(labels('store_error_allowed')),
      errorDenied: deps.metrics.rateLimitDecisions.get(labels('store_error_denied')),
      localAllowed: deps.metrics.rateLimitDecisions.get(labels('precheck_allowed')),
      localLimited: deps.metrics.rateLimitDecisions.get(labels('precheck_limited')),
    });
  },
};
