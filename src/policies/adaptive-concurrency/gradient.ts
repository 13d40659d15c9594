// Gradient adaptive concurrency limit (Netflix concurrency-limits Gradient2Limit): scale the limit by long/short RTT.

import type { ConcurrencyLimiter, LimiterOutcome } from './limiter.js';

export interface GradientConfig {
  /** Default 20 (Netflix). */
  readonly initialLimit?: number;
  /** Default 1 (Netflix uses 20). */
  readonly minLimit?: number;
  /** Default 200 (Netflix maxConcurrency). */
  readonly maxLimit?: number;
  /** Weight of each new estimate, in (0, 1]. Default 0.2. */
  readonly smoothing?: number;
  /** How much slower than the long-term RTT a sample may be before the limit shrinks. Default 1.5 (>= 1). */
  readonly rttTolerance?: number;
  /** Samples in the long-term RTT exponential average. Default 600. */
  readonly longWindow?: number;
  /** Samples averaged plainly before the exponential average starts. Default 10. */
  readonly warmupWindow?: number;
  /** Headroom added on every update so the limit can probe upward; a number or a function of the limit. Default 4. */
  readonly queueSize?: number | ((limit: number) => number);
}

export const DEFAULT_GRADIENT = {
  initialLimit: 20,
  minLimit: 1,
  maxLimit: 200,
  smoothing: 0.2,
  rttTolerance: 1.5,
  longWindow: 600,
  warmupWindow: 10,
  queueSize: 4,
} as const;

/**
 * Gradient2: rather than an absolute "no-load RTT" (hard to measure on a busy service), the reference is a long
 * exponential average of RTT. gradient = clamp(tolerance * longRtt / sampleRtt, 0.5, 1) is 1 while latency is
 * normal and falls as queues build; new = limit * gradient + queueSize, blended into the limit with `smoothing`.
 * The 0.5 floor stops one outlier from halving the limit. A 'dropped' sample (Netflix's Gradient2 ignores drops)
 * is treated here as the worst gradient, so overload signals that never produce a latency still push the limit down.
 */
export class GradientLimiter implements ConcurrencyLimiter {
  readonly minLimit: number;
  readonly maxLimit: number;
  readonly smoothing: number;
  readonly rttTolerance: number;
  private readonly queueSize: (limit: number) => number;
  private readonly longFactor: number;
  private readonly warmupWindow: number;
  private estimated: number;
  private active = 0;
  private longRtt = 0;
  private samples = 0;
  private warmupSum = 0;

  constructor(config: GradientConfig = {}) {
    this.minLimit = config.minLimit ?? DEFAULT_GRADIENT.minLimit;
    this.maxLimit = config.maxLimit ?? DEFAULT_GRADIENT.maxLimit;
    this.smoothing = config.smoothing ?? DEFAULT_GRADIENT.smoothing;
    this.rttTolerance = config.rttTolerance ?? DEFAULT_GRADIENT.rttTolerance;
    const longWindow = config.longWindow ?? DEFAULT_GRADIENT.longWindow;
    this.warmupWindow = config.warmupWindow ?? DEFAULT_GRADIENT.warmupWindow;
    const q = config.queueSize ?? DEFAULT_GRADIENT.queueSize;
    this.queueSize = typeof q === 'number' ? () => q : q;
    if (!(Number.isInteger(this.minLimit) && this.minLimit >= 1)) throw new RangeError(`minLimit must be an integer >= 1, got ${this.minLimit}`);
    if (!(this.maxLimit >= this.minLimit)) throw new RangeError(`maxLimit must be >= minLimit, got ${this.maxLimit}`);
    if (!(this.smoothing > 0 && this.smoothing <= 1)) throw new RangeError(`smoothing must be in (0, 1], got ${this.smoothing}`);
    if (!(this.rttTolerance >= 1)) throw new RangeError(`rttTolerance must be >= 1, got ${this.rttTolerance}`);
    if (!(longWindow >= 1)) throw new RangeError(`longWindow must be >= 1, got ${longWindow}`);
    if (!(this.warmupWindow >= 0)) throw new RangeError(`warmupWindow must be >= 0, got ${this.warmupWindow}`);
    this.longFactor = 2 / (longWindow + 1);
    this.estimated = clamp(config.initialLimit ?? DEFAULT_GRADIENT.initialLimit, this.minLimit, this.maxLimit);
  }

  get limit(): number {
    return Math.floor(this.estimated);
  }

  get inflight(): number {
    return this.active;
  }

  /** The long-term RTT average the gradient compares against (for metrics). */
  get longRttMs(): number {
    return this.longRtt;
  }

  tryAcquire(): boolean {
    if (this.active >= this.limit) return false;
    this.active++;
    return true;
  }

  release(latencyMs: number, outcome: LimiterOutcome): void {
    if (this.active === 0) return;
    const inflightAtSample = this.active;
    this.active--;
    if (outcome === 'ignore') return;
    if (outcome === 'dropped') {
      this.blend(0.5);
      return;
    }
    if (!(latencyMs > 0) || !Number.isFinite(latencyMs)) return; // no usable sample
    const longRtt = this.addLongSample(latencyMs);
    // After a long overload the average is inflated; pull it down faster than the EMA would so the limit
    // can recover instead of treating the overloaded latency as the new normal.
    if (longRtt / latencyMs > 2) this.longRtt *= 0.95;
    // App-limited: too little traffic to say anything about the limit.
    if (inflightAtSample < this.estimated / 2) return;
    this.blend(Math.max(0.5, Math.min(1, (this.rttTolerance * longRtt) / latencyMs)));
  }

  private blend(gradient: number): void {
    const target = this.estimated * gradient + this.queueSize(this.estimated);
    const next = this.estimated * (1 - this.smoothing) + target * this.smoothing;
    this.estimated = clamp(next, this.minLimit, this.maxLimit);
  }

  /** Netflix ExpAvgMeasurement: plain mean over the warm-up samples, then an EMA with factor 2 / (window + 1). */
  private addLongSample(v: number): number {
    if (this.samples < Math.max(1, this.warmupWindow)) {
      this.samples++;
      this.warmupSum += v;
      this.longRtt = this.warmupSum / this.samples;
    } else {
      this.longRtt = this.longRtt * (1 - this.longFactor) + v * this.longFactor;
    }
    return this.longRtt;
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
