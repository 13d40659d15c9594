// AIMD adaptive concurrency limit (Netflix concurrency-limits AIMDLimit): +1 per good sample, x backoffRatio on trouble.

import type { ConcurrencyLimiter, LimiterOutcome } from './limiter.js';

export interface AimdConfig {
  /** Default 20 (Netflix). */
  readonly initialLimit?: number;
  /** Default 1: lets the limit fall as far as needed to protect a struggling upstream (Netflix uses 20). */
  readonly minLimit?: number;
  /** Default 200 (Netflix). */
  readonly maxLimit?: number;
  /** Multiplier on back-off, in [0.5, 1). Default 0.9. */
  readonly backoffRatio?: number;
  /** A successful sample slower than this counts as overload. Default 5000 ms (Netflix timeout). */
  readonly latencyThresholdMs?: number;
  /**
   * Only grow while at least half the limit is in use (Netflix's inflight * 2 >= limit check). Without it an idle
   * or lightly used route would ratchet its limit up to maxLimit and lose all protection. Default true.
   */
  readonly requireUtilization?: boolean;
  /**
   * Back off at most once per window of requests that were already in flight when the limit was cut, as TCP
   * cuts its window once per loss event. Without it a burst of N simultaneous slow responses multiplies the
   * limit by backoffRatio^N and collapses it to minLimit. Default true.
   */
  readonly backoffOncePerWindow?: boolean;
}

export const DEFAULT_AIMD = {
  initialLimit: 20,
  minLimit: 1,
  maxLimit: 200,
  backoffRatio: 0.9,
  latencyThresholdMs: 5000,
  requireUtilization: true,
  backoffOncePerWindow: true,
} as const;

export class AimdLimiter implements ConcurrencyLimiter {
  readonly minLimit: number;
  readonly maxLimit: number;
  readonly backoffRatio: number;
  readonly latencyThresholdMs: number;
  private readonly requireUtilization: boolean;
  private readonly backoffOncePerWindow: boolean;
  private current: number;
  private active = 0;
  /** Releases still to come from requests that were in flight at the last back-off. */
  private suppressBackoff = 0;

  constructor(config: AimdConfig = {}) {
    this.minLimit = config.minLimit ?? DEFAULT_AIMD.minLimit;
    this.maxLimit = config.maxLimit ?? DEFAULT_AIMD.maxLimit;
    this.backoffRatio = config.backoffRatio ?? DEFAULT_AIMD.backoffRatio;
    this.latencyThresholdMs = config.latencyThresholdMs ?? DEFAULT_AIMD.latencyThresholdMs;
    this.requireUtilization = config.requireUtilization ?? DEFAULT_AIMD.requireUtilization;
    this.backoffOncePerWindow = config.backoffOncePerWindow ?? DEFAULT_AIMD.backoffOncePerWindow;
    if (!(Number.isInteger(this.minLimit) && this.minLimit >= 1)) throw new RangeError(`minLimit must be an integer >= 1, got ${this.minLimit}`);
    if (!(Number.isInteger(this.maxLimit) && this.maxLimit >= this.minLimit)) throw new RangeError(`maxLimit must be an integer >= minLimit, got ${this.maxLimit}`);
    if (!(this.backoffRatio >= 0.5 && this.backoffRatio < 1)) throw new RangeError(`backoffRatio must be in [0.5, 1), got ${this.backoffRatio}`);
    if (!(this.latencyThresholdMs > 0)) throw new RangeError(`latencyThresholdMs must be > 0, got ${this.latencyThresholdMs}`);
    this.current = clamp(Math.floor(config.initialLimit ?? DEFAULT_AIMD.initialLimit), this.minLimit, this.maxLimit);
  }

  get limit(): number {
    return this.current;
  }

  get inflight(): number {
    return this.active;
  }

  tryAcquire(): boolean {
    if (this.active >= this.current) return false;
    this.active++;
    return true;
  }

  release(latencyMs: number, outcome: LimiterOutcome): void {
    if (this.active === 0) return;
    const inflightAtSample = this.active; // includes this request, as Netflix samples inflight at its start
    this.active--;
    const inWindow = this.suppressBackoff > 0;
    if (inWindow) this.suppressBackoff--;
    // A NaN latency is a bug upstream of us, not evidence about capacity.
    if (outcome === 'ignore' || (outcome === 'success' && Number.isNaN(latencyMs))) return;
    if (outcome === 'dropped' || latencyMs > this.latencyThresholdMs) {
      if (this.backoffOncePerWindow && inWindow) return;
      this.current = Math.max(this.minLimit, Math.floor(this.current * this.backoffRatio));
      // Everything still in flight started under the old limit; its bad news is already priced in.
      this.suppressBackoff = this.active;
      return;
    }
    if (this.requireUtilization && inflightAtSample * 2 < this.current) return;
    this.current = Math.min(this.maxLimit, this.current + 1);
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
