// ext_authz: asks an HTTP service whether to let a request through (Envoy's HTTP ext_authz shape): the check carries
// the request's method, path (appended to the service URL), allowed headers and the sidecar's metadata (peer
// identity, client address, API-key name, JWT subject); a 2xx allows, anything else denies with that status.
// Decisions may be cached for a TTL in a bounded table; a failed or timed-out check fails open or closed by config.
import { systemClock, type Clock } from '../../core/clock.js';
import { ProxyError } from '../../core/errors.js';
import type { Layer, ProxyRequest } from '../../core/service.js';
import type { Counter } from '../../observability/metrics.js';
import type { FilterFactory } from '../filter.js';
import type { ExtAuthzConfig } from './schema.js';
import { httpCheck, type CheckFn } from '../../upstream/authz-check.js';

export interface Decision {
  readonly allowed: boolean;
  readonly status: number;
  /** Headers to add upstream (allowed), flat name/value pairs. */
  readonly headers: readonly string[];
}

export type { CheckFn } from '../../upstream/authz-check.js';

export interface ExtAuthzCounters {
  readonly allow: Counter;
  readonly deny: Counter;
  readonly error: Counter;
  readonly cacheHit: Counter;
}

/** A bounded LRU of decisions with a TTL (Map iteration order is insertion order). */
export class DecisionCache {
  readonly #m = new Map<string, { d: Decision; until: number }>();
  constructor(readonly ttl: number, readonly max: number, readonly clock: Clock = systemClock) {}
  get(k: string): Decision | undefined {
    const e = this.#m.get(k);
    if (e === undefined) return undefined;
    this.#m.delete(k);
    if (e.until <= this.clock.now()) return undefined;
    this.#m.set(k, e);
    return e.d;
  }
  set(k: string, d: Decision): void {
    this.#m.delete(k);
    this.#m.set(k, { d, until: this.clock.now() + this.ttl });
    while (this.#m.size > this.max) this.#m.delete(this.#m.keys().next().value!);
  }
  get size(): number {
    return this.#m.size;
  }
}

export function extAuthzLayer(cfg: ExtAuthzConfig, counters: ExtAuthzCounters, check: CheckFn = httpCheck(cfg.uri, cfg.tls), clock: Clock = systemClock): Layer {
  const base = cfg.uri.replace(/\/$/, '');
  const cache = cfg.cache ? new DecisionCache(cfg.cache.ttl, cfg.cache.max_entries, clock) : undefined;
  const keep = new Set(cfg.upstream_headers);

  const metadata = (req: ProxyRequest): Record<string, string> => {
    const h: Record<string, string> = {};
    for (const name of cfg.allowed_headers) {
      const v = req.headers.get(name);
      if (v !== undefined) h[name] = v;
    }
    h['x-forwarded-host'] = req.authority;
    h['x-forwarded-method'] = req.method;
    h['x-sidecar-authz-client'] = req.context.downstreamAddress;
    h['x-request-id'] = req.context.requestId;
    if (req.context.peerIdentity !== undefined) h['x-sidecar-authz-peer'] = req.context.peerIdentity;
    if (req.context.apiKeyName !== undefined) h['x-sidecar-authz-api-key'] = req.context.apiKeyName;
    const sub = req.context.jwtClaims?.sub;
    if (typeof sub === 'string') h['x-sidecar-authz-jwt-sub'] = sub.replace(/[^\x20-\x7e]/g, '?');
    return h;
  };

  const decide = async (req: ProxyRequest, meta: Record<string, string>): Promise<Decision | Error> => {
    try {
      // GET/HEAD-shaped checks carry no body; other methods are sent as the request's own, body-less.
      const method = req.method === 'CONNECT' ? 'GET' : req.method;
      const r = await check(base + (req.path.startsWith('/') ? req.path : `/${req.path}`), method, meta, cfg.timeout);
      if (r.status >= 200 && r.status < 300) {
        const headers: string[] = [];
        r.headers.forEach((v, k) => {
          if (keep.has(k)) headers.push(k, v);
        });
        return { allowed: true, status: r.status, headers };
      }
      if (r.status >= 500) return new Error(`authorization service answered ${r.status}`);
      return { allowed: false, status: r.status >= 400 ? r.status : 403, headers: [] };
    } catch (e) {
      const err = e as Error;
      return new Error(err.name === 'TimeoutError' ? `authorization service timed out after ${cfg.timeout}ms` : `authorization service unreachable: ${err.message}`);
    }
  };

  return (next) => async (req) => {
    for (const h of keep) req.headers.remove(h);
    const meta = metadata(req);
    const key = cache ? `${req.method} ${req.authority} ${req.path}\n${JSON.stringify(meta, (k, v: unknown) => (k === 'x-request-id' ? undefined : v))}` : '';
    let d: Decision | Error | undefined = cache?.get(key);
    if (d !== undefined) counters.cacheHit.inc();
    else {
      d = await decide(req, meta);
      if (cache && !(d instanceof Error)) cache.set(key, d);
    }
    if (d instanceof Error) {
      counters.error.inc();
      if (cfg.failure_mode_allow) return next(req);
      req.body?.resume();
      throw new ProxyError('UAEX', `ext_authz: ${d.message} (failing closed)`, { status: cfg.status_on_error });
    }
    if (!d.allowed) {
      counters.deny.inc();
      req.body?.resume();
      throw new ProxyError('UAEX', `ext_authz: denied by the authorization service (status ${d.status})`, { status: d.status });
    }
    counters.allow.inc();
    for (let i = 0; i < d.headers.length; i += 2) req.headers.set(d.headers[i]!, d.headers[i + 1]!);
    return next(req);
  };
}

/** The registered filter (`type: ext_authz`). */
export const extAuthzFilter: FilterFactory<ExtAuthzConfig> = {
  type: 'ext_authz',
  create: (cfg, deps) => {
    const c = (outcome: string): Counter => deps.metrics.extAuthz.get({ listener: deps.listener, route: deps.route, outcome });
    return extAuthzLayer(cfg, { allow: c('allow'), deny: c('deny'), error: c('error'), cacheHit: c('cache_hit') });
  },
};
