// Latency histograms: fixed log-scale buckets (DDSketch-style, ~2% relative error) and a clock-driven sliding window.

import type { Clock } from '../../core/clock.js';

export interface HistogramOptions {
  /** Smallest value resolved with relative accuracy; smaller ones share one underflow bucket. Default 0.01 ms (10 us). */
  readonly minMs?: number;
  /** Largest value resolved with relative accuracy; larger ones share one overflow bucket. Default 60 000 ms. */
  readonly maxMs?: number;
  /** Bound on |estimate - true| / true for in-range quantiles. Default 0.02. */
  readonly relativeError?: number;
}

export const DEFAULT_HISTOGRAM = { minMs: 0.01, maxMs: 60_000, relativeError: 0.02 } as const;

/**
 * Bucket geometry shared by histograms of one configuration. Bucket i holds (g^(i-1), g^i] with
 * g = (1 + a) / (1 - a); reporting 2 g^i / (g + 1) is then within a relative error a of every value in it
 * (the DDSketch bound). Defaults give 394 buckets (about 3 KB of counters per histogram).
 */
export class BucketLayout {
  readonly gamma: number;
  readonly slots: number;
  private readonly logGamma: number;
  private readonly minIndex: number;
  private readonly maxIndex: number;

  constructor(options: HistogramOptions = {}) {
    const minMs = options.minMs ?? DEFAULT_HISTOGRAM.minMs;
    const maxMs = options.maxMs ?? DEFAULT_HISTOGRAM.maxMs;
    const a = options.relativeError ?? DEFAULT_HISTOGRAM.relativeError;
    if (!(minMs > 0 && maxMs > minMs && Number.isFinite(maxMs))) throw new RangeError(`need 0 < minMs < maxMs, got ${minMs}, ${maxMs}`);
    if (!(a > 0 && a < 1)) throw new RangeError(`relativeError must be in (0, 1), got ${a}`);
    this.gamma = (1 + a) / (1 - a);
    this.logGamma = Math.log(this.gamma);
    this.minIndex = Math.ceil(Math.log(minMs) / this.logGamma);
    this.maxIndex = Math.ceil(Math.log(maxMs) / this.logGamma);
    // slot 0: underflow, 1..n: log buckets, n + 1: overflow.
    this.slots = this.maxIndex - this.minIndex + 3;
  }

  /** Slot for a non-negative value. */
  slotOf(v: number): number {
    if (v <= 0) return 0;
    const i = Math.ceil(Math.log(v) / this.logGamma);
    if (i < this.minIndex) return 0;
    if (i > this.maxIndex) return this.slots - 1;
    return i - this.minIndex + 1;
  }

  /** Representative value of an in-range slot (1 .. slots - 2). */
  valueOf(slot: number): number {
    return (2 * this.gamma ** (slot - 1 + this.minIndex)) / (this.gamma + 1);
  }
}

const layouts = new Map<string, BucketLayout>();

/** Histograms with equal options share one layout object rather than recomputing it. */
function layoutFor(options: HistogramOptions): BucketLayout {
  const d = DEFAULT_HISTOGRAM;
  const key = `${options.minMs ?? d.minMs}/${options.maxMs ?? d.maxMs}/${options.relativeError ?? d.relativeError}`;
  let l = layouts.get(key);
  if (l === undefined) {
    l = new BucketLayout(options);
    layouts.set(key, l);
  }
  return l;
}

/**
 * Cumulative latency histogram. record() is O(1) and allocation-free (one log and a counter increment);
 * quantile() walks the buckets. Counts are float64 so a long-lived histogram cannot wrap a 32-bit counter.
 */
export class LatencyHistogram {
  readonly layout: BucketLayout;
  /** Per-slot counts; read-only outside this module (the windowed variant sums them). */
  readonly counts: Float64Array;
  private n = 0;
  private total = 0;
  private lo = Infinity;
  private hi = -Infinity;

  constructor(options: HistogramOptions = {}) {
    this.layout = layoutFor(options);
    this.counts = new Float64Array(this.layout.slots);
  }

  /** Record one latency. Negative values count as 0; NaN is dropped. */
  record(ms: number): void {
    if (Number.isNaN(ms)) return;
    const v = ms > 0 ? ms : 0;
    this.recordInSlot(this.layout.slotOf(v), v);
  }

  /**
   * Record a value whose slot the caller already computed with this layout's slotOf (one log for several
   * histograms of the same layout: the latency history files each request into four series).
   */
  recordInSlot(slot: number, v: number): void {
    this.counts[slot]! += 1;
    this.n++;
    this.total += v;
    if (v < this.lo) this.lo = v;
    if (v > this.hi) this.hi = v;
  }

  get count(): number {
    return this.n;
  }

  get sum(): number {
    return this.total;
  }

  get min(): number | undefined {
    return this.n > 0 ? this.lo : undefined;
  }

  get max(): number | undefined {
    return this.n > 0 ? this.hi : undefined;
  }

  mean(): number | undefined {
    return this.n > 0 ? this.total / this.n : undefined;
  }

  /** Value at quantile q in [0, 1] (nearest rank), within relativeError of the true one; undefined when empty. */
  quantile(q: number): number | undefined {
    return quantileOf(this.layout, [this], q);
  }

  reset(): void {
    this.counts.fill(0);
    this.n = 0;
    this.total = 0;
    this.lo = Infinity;
    this.hi = -Infinity;
  }

  /** Add another histogram's samples into this one; both must use the same options. */
  merge(other: LatencyHistogram): void {
    if (other.layout !== this.layout) throw new Error('cannot merge histograms with different bucket layouts');
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.n += other.n;
    this.total += other.total;
    if (other.lo < this.lo) this.lo = other.lo;
    if (other.hi > this.hi) this.hi = other.hi;
  }
}

/** Nearest-rank quantile over the sum of several same-layout histograms, without building the sum. */
function quantileOf(layout: BucketLayout, hs: readonly LatencyHistogram[], q: number): number | undefined {
  let n = 0;
  let lo = Infinity;
  let hi = -Infinity;
  for (const h of hs) {
    if (h.count === 0) continue;
    n += h.count;
    lo = Math.min(lo, h.min ?? Infinity);
    hi = Math.max(hi, h.max ?? -Infinity);
  }
  if (n === 0 || Number.isNaN(q)) return undefined;
  // The extremes are tracked exactly, so report them exactly.
  if (q <= 0) return lo;
  if (q >= 1) return hi;
  const rank = Math.max(1, Math.ceil(q * n));
  let seen = 0;
  const last = layout.slots - 1;
  for (let slot = 0; slot <= last; slot++) {
    for (const h of hs) seen += h.counts[slot]!;
    if (seen >= rank) {
      // Under/overflow buckets have no geometry; their best estimate is the exact extreme seen.
      if (slot === 0) return lo;
      if (slot === last) return hi;
      return Math.min(hi, Math.max(lo, layout.valueOf(slot)));
    }
  }
  return hi;
}

export interface WindowedHistogramOptions extends HistogramOptions {
  /** Sub-histograms the window is cut into; more slices, smoother expiry. Default 6. */
  readonly slices?: number;
}

/**
 * Sliding-window histogram for a route's "live" percentiles (e.g. the p95 that triggers a hedge).
 * The window is a ring of `slices` histograms each covering windowMs / slices; the oldest is cleared when time
 * moves past it, so quantiles cover between windowMs - windowMs / slices and windowMs of recent samples.
 * Rotation happens lazily on record()/quantile() from the clock: no timers, and record() stays allocation-free.
 */
export class WindowedHistogram {
  readonly windowMs: number;
  readonly sliceMs: number;
  private readonly ring: LatencyHistogram[];
  private readonly ids: Float64Array;
  private readonly live: LatencyHistogram[] = [];

  private readonly clock: Clock;

  constructor(windowMs: number, clock: Clock, options: WindowedHistogramOptions = {}) {
    this.clock = clock;
    const slices = options.slices ?? 6;
    if (!(windowMs > 0 && Number.isFinite(windowMs))) throw new RangeError(`windowMs must be > 0, got ${windowMs}`);
    if (!(Number.isInteger(slices) && slices >= 1)) throw new RangeError(`slices must be an integer >= 1, got ${slices}`);
    this.windowMs = windowMs;
    this.sliceMs = windowMs / slices;
    this.ring = Array.from({ length: slices }, () => new LatencyHistogram(options));
    this.ids = new Float64Array(slices).fill(-Infinity);
  }

  record(ms: number): void {
    this.current().record(ms);
  }

  quantile(q: number): number | undefined {
    const first = this.ring[0]!;
    return quantileOf(first.layout, this.liveSlices(), q);
  }

  /** Samples currently inside the window. */
  get count(): number {
    let n = 0;
    for (const h of this.liveSlices()) n += h.count;
    return n;
  }

  reset(): void {
    for (const h of this.ring) h.reset();
    this.ids.fill(-Infinity);
  }

  private current(): LatencyHistogram {
    const b = Math.floor(this.clock.now() / this.sliceMs);
    const size = this.ring.length;
    const i = ((b % size) + size) % size;
    const h = this.ring[i]!;
    if (this.ids[i] !== b) {
      h.reset();
      this.ids[i] = b;
    }
    return h;
  }

  private liveSlices(): readonly LatencyHistogram[] {
    const b = Math.floor(this.clock.now() / this.sliceMs);
    this.live.length = 0;
    for (let i = 0; i < this.ring.length; i++) {
      const age = b - this.ids[i]!;
      if (age >= 0 && age < this.ring.length) this.live.push(this.ring[i]!);
    }
    return this.live;
  }
}
