// Passive outlier detection (Envoy consecutive_5xx / consecutive_gateway_failure): ejects endpoints that keep failing.

import type { Clock } from '../../core/clock.js';

export type OutlierOutcome = 'success' | '5xx' | 'gateway-error' | 'local-origin-failure';
export type EjectionReason = 'consecutive-5xx' | 'consecutive-gateway-failure' | 'consecutive-local-origin-failure';

export interface OutlierConfig {
  /** Consecutive 5xx (gateway errors and, unless split, local-origin failures included) before ejection. Default 5; <= 0 disables. */
  readonly consecutive5xx?: number;
  /** Consecutive 502/503/504 (and, unless split, local-origin failures). Default 5; <= 0 disables. */
  readonly consecutiveGatewayFailure?: number;
  /** Only used when splitExternalLocalOriginErrors: consecutive connect failures/resets/timeouts. Default 5. */
  readonly consecutiveLocalOriginFailure?: number;
  /**
   * Envoy split_external_local_origin_errors (default false). When false, a local-origin failure counts as the
   * 503/504 the proxy would answer in its place, so it feeds both the 5xx and the gateway-failure counters.
   */
  readonly splitExternalLocalOriginErrors?: boolean;
  /** Default 30 s; the n-th ejection in a row lasts n * base. */
  readonly baseEjectionTimeMs?: number;
  /** Cap on one ejection. Default 300 s. */
  readonly maxEjectionTimeMs?: number;
  /** Default 10. */
  readonly maxEjectionPercent?: number;
  /** Envoy always_eject_one_host (default false): allow one ejection even when the percentage rounds to zero hosts. */
  readonly alwaysEjectOneHost?: boolean;
  /** Envoy interval (10 s): after a healthy base_ejection_time, the ejection multiplier drops by one per interval. */
  readonly intervalMs?: number;
}

export const DEFAULT_OUTLIER_CONFIG = {
  consecutive5xx: 5,
  consecutiveGatewayFailure: 5,
  consecutiveLocalOriginFailure: 5,
  splitExternalLocalOriginErrors: false,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 10,
  alwaysEjectOneHost: false,
  intervalMs: 10_000,
} as const;

export type OutlierEvent<K = number> =
  | { readonly type: 'eject'; readonly endpoint: K; readonly reason: EjectionReason; readonly durationMs: number; readonly multiplier: number; readonly atMs: number }
  /** Detected but not ejected because max_ejection_percent was reached (Envoy ejections_overflow). */
  | { readonly type: 'eject-overflow'; readonly endpoint: K; readonly reason: EjectionReason; readonly atMs: number }
  /** atMs is when the ejection ended, which may be earlier than when it was noticed. */
  | { readonly type: 'uneject'; readonly endpoint: K; readonly atMs: number };

interface EndpointState {
  c5xx: number;
  cGateway: number;
  cLocal: number;
  /** End of the current ejection, or -Infinity when in service. */
  ejectedUntil: number;
  /** Envoy's eject-time backoff: how many base periods the next ejection lasts, before the increment. */
  multiplier: number;
  /** When the endpoint last returned to service; the multiplier decays from here. */
  returnedAt: number;
}

export const EJECTION_REASONS: readonly EjectionReason[] = ['consecutive-5xx', 'consecutive-gateway-failure', 'consecutive-local-origin-failure'];

/**
 * One detector per cluster; endpoints are addressed by a key: an index (setEndpointCount) or, as the cluster uses it,
 * an address (addEndpoint/removeEndpoint), so state follows the endpoint across endpoint-set changes.
 *
 * Choices, with Envoy as reference:
 * - Ejections end exactly at their deadline: isEjected(), ejectedCount() and tick() expire them lazily from the
 *   clock, so no timers are needed (Envoy waits for its next interval sweep).
 * - max_ejection_percent is strict, as in current Envoy: one more ejection is allowed only while
 *   100 * (ejected + 1) / endpoints <= maxEjectionPercent. With the default 10 %, clusters under 10 endpoints
 *   therefore never eject, unless alwaysEjectOneHost (Envoy's opt-in for what used to be its default) is set.
 * - Outcomes recorded for an ejected endpoint (in-flight requests finishing) are ignored, and its counters are
 *   cleared on ejection, so it returns with a clean slate instead of being re-ejected by stale failures.
 */
export class OutlierDetector<K = number> {
  private readonly cfg: Required<OutlierConfig>;
  private readonly states = new Map<K, EndpointState>();
  private readonly byReason: Record<EjectionReason, number> = {
    'consecutive-5xx': 0,
    'consecutive-gateway-failure': 0,
    'consecutive-local-origin-failure': 0,
  };
  private readonly listeners = new Set<(e: OutlierEvent<K>) => void>();
  /** Ejections performed. */
  ejectionsTotal = 0;
  /** Ejections prevented by max_ejection_percent. */
  ejectionsOverflowTotal = 0;

  private readonly clock: Clock;

  constructor(config: OutlierConfig, clock: Clock, endpointCount: number) {
    this.clock = clock;
    this.cfg = { ...DEFAULT_OUTLIER_CONFIG, ...stripUndefined(config) };
    if (!(this.cfg.baseEjectionTimeMs > 0)) throw new RangeError(`baseEjectionTimeMs must be > 0, got ${this.cfg.baseEjectionTimeMs}`);
    if (!(this.cfg.maxEjectionTimeMs > 0)) throw new RangeError(`maxEjectionTimeMs must be > 0, got ${this.cfg.maxEjectionTimeMs}`);
    if (!(this.cfg.intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${this.cfg.intervalMs}`);
    if (!(this.cfg.maxEjectionPercent >= 0)) throw new RangeError(`maxEjectionPercent must be >= 0, got ${this.cfg.maxEjectionPercent}`);
    this.setEndpointCount(endpointCount);
  }

  get endpointCount(): number {
    return this.states.size;
  }

  /** Subscribe to eject / eject-overflow / uneject events; returns an unsubscribe function. */
  on(listener: (e: OutlierEvent<K>) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Resize after an endpoint update: indices below n keep their state, new ones start fresh. */
  setEndpointCount(n: number): void {
    if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`endpointCount must be a non-negative integer, got ${n}`);
    for (const k of this.states.keys()) if (!((k as unknown as number) < n)) this.states.delete(k);
    for (let i = 0; i < n; i++) this.addEndpoint(i as unknown as K);
  }

  /** Starts tracking endpoint k (no-op when already tracked: its state is kept). */
  addEndpoint(k: K): void {
    if (!this.states.has(k)) this.states.set(k, { c5xx: 0, cGateway: 0, cLocal: 0, ejectedUntil: -Infinity, multiplier: 0, returnedAt: -Infinity });
  }

  /** Forgets endpoint k (it left the cluster); an ejection it held no longer counts toward max_ejection_percent. */
  removeEndpoint(k: K): void {
    this.states.delete(k);
  }

  /** Feed the result of one request to endpoint i. */
  record(i: K, outcome: OutlierOutcome): void {
    const s = this.states.get(i);
    if (s === undefined) return;
    if (this.expire(i, s)) return; // still ejected: see class comment
    const c = this.cfg;
    switch (outcome) {
      case 'success':
        s.c5xx = 0;
        s.cGateway = 0;
        s.cLocal = 0;
        return;
      case '5xx':
        s.c5xx++;
        s.cGateway = 0; // a non-gateway 5xx breaks a run of gateway failures, as in Envoy
        break;
      case 'gateway-error':
        s.c5xx++;
        s.cGateway++;
        break;
      case 'local-origin-failure':
        if (c.splitExternalLocalOriginErrors) {
          s.cLocal++;
        } else {
          s.c5xx++;
          s.cGateway++;
        }
        break;
    }
    // Gateway first, as Envoy checks it first: the more specific reason makes the better label.
    if (c.consecutiveGatewayFailure > 0 && s.cGateway >= c.consecutiveGatewayFailure) {
      s.cGateway = 0;
      if (this.tryEject(i, s, 'consecutive-gateway-failure')) return;
    }
    if (c.consecutive5xx > 0 && s.c5xx >= c.consecutive5xx) {
      s.c5xx = 0;
      if (this.tryEject(i, s, 'consecutive-5xx')) return;
    }
    if (c.splitExternalLocalOriginErrors && c.consecutiveLocalOriginFailure > 0 && s.cLocal >= c.consecutiveLocalOriginFailure) {
      s.cLocal = 0;
      this.tryEject(i, s, 'consecutive-local-origin-failure');
    }
  }

  isEjected(i: K): boolean {
    const s = this.states.get(i);
    return s !== undefined && this.expire(i, s);
  }

  /** End of endpoint i's current ejection, or undefined when it is in service. */
  ejectedUntil(i: K): number | undefined {
    const s = this.states.get(i);
    return s !== undefined && this.expire(i, s) ? s.ejectedUntil : undefined;
  }

  ejectedCount(): number {
    let n = 0;
    for (const [i, s] of this.states) if (this.expire(i, s)) n++;
    return n;
  }

  /** Return every endpoint whose ejection has ended (emitting uneject events); optional, as reads do it lazily. */
  tick(): void {
    this.ejectedCount();
  }

  ejectionsByReason(reason: EjectionReason): number {
    return this.byReason[reason];
  }

  /** The multiplier the next ejection of endpoint i would start from, after decay (for tests and debugging). */
  ejectionMultiplier(i: K): number {
    const s = this.states.get(i);
    if (s === undefined) return 0;
    return this.expire(i, s) ? s.multiplier : this.decayed(s, this.clock.now());
  }

  /** True while ejected; otherwise brings an expired ejection back to service and returns false. */
  private expire(i: K, s: EndpointState): boolean {
    if (s.ejectedUntil === -Infinity) return false;
    if (this.clock.now() < s.ejectedUntil) return true;
    s.returnedAt = s.ejectedUntil;
    s.ejectedUntil = -Infinity;
    this.emit({ type: 'uneject', endpoint: i, atMs: s.returnedAt });
    return false;
  }

  /**
   * Envoy decrements the multiplier on each interval sweep once the endpoint has been back for a full
   * base_ejection_time; computed here in closed form from the return time instead of by sweeping.
   */
  private decayed(s: EndpointState, now: number): number {
    const healthyFor = now - s.returnedAt - this.cfg.baseEjectionTimeMs;
    if (s.multiplier === 0 || !(healthyFor >= 0)) return s.multiplier;
    return Math.max(0, s.multiplier - (Math.floor(healthyFor / this.cfg.intervalMs) + 1));
  }

  private tryEject(i: K, s: EndpointState, reason: EjectionReason): boolean {
    const now = this.clock.now();
    const c = this.cfg;
    const active = this.ejectedCount();
    const total = this.states.size;
    const allowed = (100 * (active + 1)) / total <= c.maxEjectionPercent || (c.alwaysEjectOneHost && active === 0);
    if (!allowed) {
      this.ejectionsOverflowTotal++;
      this.emit({ type: 'eject-overflow', endpoint: i, reason, atMs: now });
      return false;
    }
    let m = this.decayed(s, now);
    // Envoy stops growing the multiplier one step past the cap so repeat offenders decay from there.
    if (m * c.baseEjectionTimeMs < c.maxEjectionTimeMs + c.baseEjectionTimeMs) m++;
    s.multiplier = m;
    const durationMs = Math.min(c.baseEjectionTimeMs * m, Math.max(c.maxEjectionTimeMs, c.baseEjectionTimeMs));
    s.ejectedUntil = now + durationMs;
    s.c5xx = 0;
    s.cGateway = 0;
    s.cLocal = 0;
    this.ejectionsTotal++;
    this.byReason[reason]++;
    this.emit({ type: 'eject', endpoint: i, reason, durationMs, multiplier: m, atMs: now });
    return true;
  }

  private emit(e: OutlierEvent<K>): void {
    for (const l of this.listeners) l(e);
  }
}

/** So an explicit `undefined` in a config object does not override a default. */
function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
