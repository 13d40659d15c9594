// Retry budget (Linkerd retryBudget / Finagle RetryBudget): caps retries at a ratio of recent requests plus a floor.

import type { Clock } from '../../core/clock.js';

export interface RetryBudgetConfig {
  /** Retries allowed per original request over the window (Linkerd retryRatio, default 0.2). */
  readonly retryRatio?: number;
  /** Floor so low-traffic services can still retry (Linkerd minRetriesPerSecond, default 10). */
  readonly minRetriesPerSecond?: number;
  /** How long deposits and withdrawals count (Linkerd ttl, default 10 s). */
  readonly ttlMs?: number;
  /** Bucket width; memory is ceil(ttl/bucket) + 1 buckets whatever the traffic (default 1000 ms). */
  readonly bucketMs?: number;
}

export const DEFAULT_RETRY_BUDGET = { retryRatio: 0.2, minRetriesPerSecond: 10, ttlMs: 10_000, bucketMs: 1000 } as const;

// Floating sums of ratio * deposits (0.2 * 3 = 0.6000000000000001) must not decide a withdrawal.
const EPS = 1e-9;

/**
 * Guarantee: at every successful tryWithdraw() at time t, retries withdrawn in [t - ttl, t] are at most
 * retryRatio * (requests deposited in (t - ttl, t]) + minRetriesPerSecond * ttl / 1000.
 *
 * With per-bucket counters that needs two window sizes: withdrawals are counted over ceil(ttl/bucket) + 1 buckets
 * (a superset of the trailing ttl) and deposits over floor(ttl/bucket) buckets (a subset). The cost is that a withdrawal
 * lingers up to one bucket longer than ttl, which only errs on the side of fewer retries.
 */
export class RetryBudget {
  readonly retryRatio: number;
  readonly minRetriesPerSecond: number;
  readonly ttlMs: number;
  readonly bucketMs: number;
  /** Retries refused because the budget was empty (for a "retry budget exhausted" counter). */
  exhaustedTotal = 0;
  /** Retries granted. */
  withdrawnTotal = 0;

  private readonly reserve: number;
  private readonly depositBuckets: number;
  private readonly size: number;
  private readonly ids: Float64Array;
  private readonly deposits: Float64Array;
  private readonly withdrawals: Float64Array;

  private readonly clock: Clock;

  constructor(config: RetryBudgetConfig, clock: Clock) {
    this.clock = clock;
    this.retryRatio = config.retryRatio ?? DEFAULT_RETRY_BUDGET.retryRatio;
    this.minRetriesPerSecond = config.minRetriesPerSecond ?? DEFAULT_RETRY_BUDGET.minRetriesPerSecond;
    this.ttlMs = config.ttlMs ?? DEFAULT_RETRY_BUDGET.ttlMs;
    this.bucketMs = config.bucketMs ?? DEFAULT_RETRY_BUDGET.bucketMs;
    if (!(this.retryRatio >= 0) || !Number.isFinite(this.retryRatio)) throw new RangeError(`retryRatio must be >= 0, got ${this.retryRatio}`);
    if (!(this.minRetriesPerSecond >= 0) || !Number.isFinite(this.minRetriesPerSecond)) {
      throw new RangeError(`minRetriesPerSecond must be >= 0, got ${this.minRetriesPerSecond}`);
    }
    if (!(this.bucketMs > 0)) throw new RangeError(`bucketMs must be > 0, got ${this.bucketMs}`);
    if (!(this.ttlMs >= this.bucketMs) || !Number.isFinite(this.ttlMs)) throw new RangeError(`ttlMs must be >= bucketMs, got ${this.ttlMs}`);
    this.reserve = (this.minRetriesPerSecond * this.ttlMs) / 1000;
    // floor/ceil so the deposit window never exceeds ttl and the withdrawal window never falls short of it.
    this.depositBuckets = Math.floor(this.ttlMs / this.bucketMs);
    this.size = Math.ceil(this.ttlMs / this.bucketMs) + 1;
    this.ids = new Float64Array(this.size).fill(-Infinity);
    this.deposits = new Float64Array(this.size);
    this.withdrawals = new Float64Array(this.size);
  }

  /** Record one original (non-retry) request; each earns retryRatio of a retry. */
  deposit(): void {
    this.deposits[this.slot(this.bucketNow())]! += 1;
  }

  /** Ask for one retry. false means the budget is exhausted and the caller should give up instead. */
  tryWithdraw(): boolean {
    const b = this.bucketNow();
    if (this.available(b) < 1 - EPS) {
      this.exhaustedTotal++;
      return false;
    }
    this.withdrawals[this.slot(b)]! += 1;
    this.withdrawnTotal++;
    return true;
  }

  /** Whole retries that tryWithdraw() would grant right now. */
  balance(): number {
    return Math.max(0, Math.floor(this.available(this.bucketNow()) + EPS));
  }

  private bucketNow(): number {
    return Math.floor(this.clock.now() / this.bucketMs);
  }

  /** Ring slot for bucket b, clearing whatever older bucket last used it. */
  private slot(b: number): number {
    const i = ((b % this.size) + this.size) % this.size;
    if (this.ids[i] !== b) {
      this.ids[i] = b;
      this.deposits[i] = 0;
      this.withdrawals[i] = 0;
    }
    return i;
  }

  private available(b: number): number {
    let deposited = 0;
    let withdrawn = 0;
    for (let i = 0; i < this.size; i++) {
      const age = b - this.ids[i]!;
      if (age < 0 || age >= this.size) continue; // stale slot (or a clock that went backwards)
      withdrawn += this.withdrawals[i]!;
      if (age < this.depositBuckets) deposited += this.deposits[i]!;
    }
    return this.retryRatio * deposited + this.reserve - withdrawn;
  }
}
