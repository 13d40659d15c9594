// The global rate limit's local pre-check: tokens leased from Redis in batches and spent here without a round trip,
// and refusals remembered until their Retry-After. Pure (an injected clock); the filter does the Redis calls.
// Every request admitted here was paid for in Redis, so the fleet never admits more than Redis granted; what leases
// change is when: see docs/rate-limits.md for the exact bound.
import type { Clock } from '../../core/clock.js';

export interface LeaseDecision {
  readonly allowed: boolean;
  readonly remaining: number;
  readonly retryAfterMs: number;
  readonly resetMs: number;
}

export interface LeaseOptions {
  /** Most tokens one Redis call takes for a key (as many as the bucket holds, at least one). */
  readonly lease: number;
  /** Unspent tokens of a lease are dropped this long after Redis granted it. */
  readonly ttlMs: number;
  /** Most keys held (LRU); an evicted key's tokens are dropped. */
  readonly maxKeys: number;
  /** Refuse a key Redis refused, here, until its Retry-After (GCRA cannot admit it sooner). */
  readonly cacheDenials: boolean;
}

interface Entry {
  tokens: number;
  expiresAt: number;
  deniedUntil: number;
  /** Redis's remaining and reset at the grant, for the RateLimit header. */
  remaining: number;
  resetAt: number;
}

export class LeaseTable {
  readonly #opts: LeaseOptions;
  readonly #clock: Pick<Clock, 'now'>;
  readonly #entries = new Map<string, Entry>();

  constructor(opts: LeaseOptions, clock: Pick<Clock, 'now'>) {
    this.#opts = opts;
    this.#clock = clock;
  }

  /** The answer from what this sidecar holds for `key`, spending a leased token; undefined: ask Redis. */
  take(key: string): LeaseDecision | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    const now = this.#clock.now();
    if (e.deniedUntil > now) return { allowed: false, remaining: 0, retryAfterMs: e.deniedUntil - now, resetMs: Math.max(0, e.resetAt - now) };
    if (e.tokens > 0 && e.expiresAt > now) {
      e.tokens--;
      this.#touch(key, e);
      return { allowed: true, remaining: e.remaining + e.tokens, retryAfterMs: 0, resetMs: Math.max(0, e.resetAt - now) };
    }
    this.#entries.delete(key);
    return undefined;
  }

  /** Redis granted `granted` tokens for `key` (the request that asked spends one of them) or refused it (`granted` 0). */
  record(key: string, granted: number, d: LeaseDecision): void {
    const now = this.#clock.now();
    if (granted <= 0) {
      if (!this.#opts.cacheDenials || d.retryAfterMs <= 0) return;
      this.#set(key, { tokens: 0, expiresAt: now, deniedUntil: now + d.retryAfterMs, remaining: 0, resetAt: now + d.resetMs });
      return;
    }
    if (granted === 1) return; // nothing left over to hold
    const e = this.#entries.get(key);
    // Tokens still held from an earlier lease stay (they were paid for); the newest grant's expiry and figures win.
    const held = e !== undefined && e.expiresAt > now ? e.tokens : 0;
    this.#set(key, { tokens: held + granted - 1, expiresAt: now + this.#opts.ttlMs, deniedUntil: 0, remaining: d.remaining, resetAt: now + d.resetMs });
  }

  get size(): number {
    return this.#entries.size;
  }

  #touch(key: string, e: Entry): void {
    this.#entries.delete(key);
    this.#entries.set(key, e);
  }

  #set(key: string, e: Entry): void {
    this.#entries.delete(key);
    this.#entries.set(key, e);
    if (this.#entries.size > this.#opts.maxKeys) this.#entries.delete(this.#entries.keys().next().value!);
  }
}
