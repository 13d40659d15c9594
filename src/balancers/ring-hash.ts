// ring_hash policy: ketama-style consistent hash ring; requests without a hash fall back to weighted random.

import type { BalancedEndpoint, BalancerOptions, LoadBalancer, PickContext, Random } from './balancer.js';
import { hashKey } from './hash.js';
import { WeightedPicker } from './weighted.js';

export const DEFAULT_RING_SIZE = 1024;
/** Same ceiling as Envoy's maximum_ring_size; bounds construction memory and time. */
export const MAX_RING_SIZE = 1 << 23;
/** Points are sorted as hash * 2^21 + rank in a Float64Array, which stays exact below 2^53. */
const MAX_ENDPOINTS = 1 << 21;

/**
 * Endpoint i gets max(1, round(ringSize * w_i / totalWeight)) points at hashKey(`${address}_${k}`).
 * A point's position depends only on its label, so dropping an endpoint only frees that endpoint's arcs.
 * Note: with a fixed ringSize the survivors' point counts grow (ringSize is spread over fewer endpoints),
 * and those new points take some keys from other survivors too; keeping points per endpoint constant
 * (ringSize proportional to total weight) gives strictly minimal movement.
 */
export class RingHashBalancer<E extends BalancedEndpoint> implements LoadBalancer<E> {
  private readonly picker: WeightedPicker<E>;
  private readonly endpoints: readonly E[];
  private readonly random: Random;
  /** Sorted point hashes and, in parallel, the index of the endpoint owning each point. */
  private readonly ring: Uint32Array;
  private readonly owners: Uint32Array;

  constructor(endpoints: readonly E[], opts: BalancerOptions = {}) {
    this.endpoints = [...endpoints];
    this.picker = new WeightedPicker(this.endpoints);
    this.random = opts.random ?? Math.random;
    const n = this.endpoints.length;
    if (n > MAX_ENDPOINTS) throw new RangeError(`ring_hash supports at most ${MAX_ENDPOINTS} endpoints, got ${n}`);

    const rs = opts.ringSize;
    const ringSize =
      rs === undefined || !Number.isFinite(rs) || rs < 1 ? DEFAULT_RING_SIZE : Math.min(Math.floor(rs), MAX_RING_SIZE);
    const weights = this.picker.weights;
    let totalWeight = 0;
    for (let i = 0; i < n; i++) totalWeight += weights[i]!;
    const counts = new Uint32Array(n);
    let points = 0;
    for (let i = 0; i < n; i++) {
      counts[i] = Math.max(1, Math.round((ringSize * weights[i]!) / totalWeight));
      points += counts[i]!;
    }

    // Rank endpoints by address so colliding point hashes resolve the same way whatever the list order.
    const byAddress = Array.from({ length: n }, (_, i) => i).sort((x, y) => {
      const ax = this.endpoints[x]!.address;
      const ay = this.endpoints[y]!.address;
      return ax < ay ? -1 : ax > ay ? 1 : x - y;
    });
    const rankToIndex = Uint32Array.from(byAddress);
    const keys = new Float64Array(points);
    let p = 0;
    for (let rank = 0; rank < n; rank++) {
      const i = rankToIndex[rank]!;
      const address = this.endpoints[i]!.address;
      for (let k = 0; k < counts[i]!; k++) keys[p++] = hashKey(`${address}_${k}`) * MAX_ENDPOINTS + rank;
    }
    keys.sort();
    this.ring = new Uint32Array(points);
    this.owners = new Uint32Array(points);
    for (let j = 0; j < points; j++) {
      const key = keys[j]!;
      const rank = key % MAX_ENDPOINTS;
      this.ring[j] = (key - rank) / MAX_ENDPOINTS;
      this.owners[j] = rankToIndex[rank]!;
    }
  }

  pick(ctx: PickContext): E | undefined {
    const eps = this.endpoints;
    const n = eps.length;
    if (n === 0) return undefined;
    const avoid = ctx.avoid;
    if (ctx.hash === undefined) {
      const i = this.picker.pick(this.random, avoid);
      return i >= 0 ? eps[i] : undefined;
    }
    const ring = this.ring;
    const len = ring.length;
    const h = ctx.hash >>> 0;
    // First point with hash >= h, wrapping past the end to point 0.
    let lo = 0;
    let hi = len;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (ring[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    let j = lo === len ? 0 : lo;
    const first = this.owners[j]!;
    if (this.picker.eligible(first, avoid)) return eps[first];

    // Slow path. Check that some endpoint is eligible before walking, so an all-down ring costs O(n), not O(points).
    let avoided = -1;
    let anyEligible = false;
    for (let i = 0; i < n; i++) {
      if (this.picker.eligible(i, avoid)) {
        anyEligible = true;
        break;
      }
      if (avoided < 0 && eps[i]!.available) avoided = i; // available but avoided
    }
    if (!anyEligible) return avoided >= 0 ? eps[avoided] : undefined;
    // Every endpoint owns at least one point, so this walk terminates within one lap.
    for (let step = 1; step < len; step++) {
      j = j + 1 === len ? 0 : j + 1;
      const o = this.owners[j]!;
      if (this.picker.eligible(o, avoid)) return eps[o];
    }
    return undefined; // unreachable
  }
}
