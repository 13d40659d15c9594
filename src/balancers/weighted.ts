// Internal helpers shared by the policies: weight sanitising, avoid matching and allocation-free weighted sampling.
// Indexing below uses `!` because every index is bounds-checked by construction.

import type { BalancedEndpoint, PickContext, Random } from './balancer.js';

/** Cap keeps sums of many weights exact in a double and finite. */
const MAX_WEIGHT = 0x7fffffff;
/** Rejection-sampling attempts before the exact O(n) scan; the common all-available case succeeds first time. */
const MAX_TRIES = 3;

/** Weights are snapshotted at construction; invalid ones become 1 so a bad config entry can't break picks. */
export function normalizeWeight(w: number): number {
  if (!Number.isFinite(w) || w < 1) return 1;
  return w > MAX_WEIGHT ? MAX_WEIGHT : w;
}

export function matchesAvoid(e: BalancedEndpoint, avoid: PickContext['avoid']): boolean {
  return avoid !== undefined && (e === avoid || e.address === avoid.address);
}

/** floor(r*n) clamped into [0,n), so a misbehaving Random (1, NaN, negative) can't index out of range. */
export function randomIndex(random: Random, n: number): number {
  const i = Math.floor(random() * n);
  return i >= 0 && i < n ? i : i >= n ? n - 1 : 0;
}

/** Weighted sampler over a fixed endpoint list, honouring live `available` and `avoid`. Returns indices, -1 for none. */
export class WeightedPicker<E extends BalancedEndpoint> {
  readonly endpoints: readonly E[];
  readonly weights: Float64Array;
  /** cum[i] = weights[0] + ... + weights[i]; binary-searched for O(log n) sampling. */
  private readonly cum: Float64Array;
  private readonly total: number;
  /** All weights equal: sample with a single multiply instead of a binary search. */
  readonly uniform: boolean;

  constructor(endpoints: readonly E[]) {
    this.endpoints = endpoints;
    const n = endpoints.length;
    this.weights = new Float64Array(n);
    this.cum = new Float64Array(n);
    let total = 0;
    let uniform = true;
    for (let i = 0; i < n; i++) {
      const w = normalizeWeight(endpoints[i]!.weight);
      this.weights[i] = w;
      total += w;
      this.cum[i] = total;
      if (w !== this.weights[0]) uniform = false;
    }
    this.total = total;
    this.uniform = uniform;
  }

  eligible(i: number, avoid: PickContext['avoid']): boolean {
    const e = this.endpoints[i]!;
    return e.available && !matchesAvoid(e, avoid);
  }

  /** Index of the first cumulative weight strictly above x. */
  private indexAt(x: number): number {
    const cum = this.cum;
    let lo = 0;
    let hi = cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cum[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Weighted sample from the whole list, ignoring availability. n >= 1. */
  private sampleAll(random: Random): number {
    const n = this.weights.length;
    return this.uniform ? randomIndex(random, n) : this.indexAt(random() * this.total);
  }

  /** Weighted sample from the whole list except `ex`, ignoring availability. n >= 2. */
  private sampleAllExcept(random: Random, ex: number): number {
    const n = this.weights.length;
    if (this.uniform) {
      const j = randomIndex(random, n - 1);
      return j >= ex ? j + 1 : j;
    }
    // Sample over the total with ex's slice cut out, then shift past that slice.
    const wEx = this.weights[ex]!;
    let x = random() * (this.total - wEx);
    if (x >= this.cum[ex]! - wEx) x += wEx;
    return this.indexAt(x);
  }

  /**
   * Weighted random eligible endpoint; when none is eligible, the available avoided one (if any), else -1.
   * Rejection sampling conditioned on success is exactly the target distribution, as is the fallback scan,
   * so the mix of the two is exact too.
   */
  pick(random: Random, avoid: PickContext['avoid']): number {
    const n = this.weights.length;
    if (n === 0) return -1;
    for (let t = 0; t < MAX_TRIES; t++) {
      const i = this.sampleAll(random);
      if (this.eligible(i, avoid)) return i;
    }
    return this.scan(random, avoid, -1);
  }

  /** Like pick() but never returns `first`; -1 when no other eligible endpoint exists. */
  pickOther(random: Random, avoid: PickContext['avoid'], first: number): number {
    const n = this.weights.length;
    if (n < 2) return -1;
    for (let t = 0; t < MAX_TRIES; t++) {
      const i = this.sampleAllExcept(random, first);
      if (i !== first && this.eligible(i, avoid)) return i;
    }
    return this.scan(random, avoid, first);
  }

  /** Exact O(n), allocation-free weighted pick among eligible endpoints other than `skip`. */
  private scan(random: Random, avoid: PickContext['avoid'], skip: number): number {
    const eps = this.endpoints;
    const n = eps.length;
    let sum = 0;
    let last = -1;
    let avoided = -1;
    for (let i = 0; i < n; i++) {
      if (i === skip) continue;
      const e = eps[i]!;
      if (!e.available) continue;
      if (matchesAvoid(e, avoid)) {
        if (avoided < 0) avoided = i;
        continue;
      }
      sum += this.weights[i]!;
      last = i;
    }
    if (last < 0) return skip < 0 ? avoided : -1;
    let x = random() * sum;
    for (let i = 0; i < last; i++) {
      if (i === skip || !this.eligible(i, avoid)) continue;
      x -= this.weights[i]!;
      if (x < 0) return i;
    }
    return last; // also absorbs rounding and out-of-range random values
  }
}
