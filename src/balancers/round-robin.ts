// round_robin policy: nginx smooth weighted round robin, with an O(1) rotating cursor when all weights are equal.

import type { BalancedEndpoint, BalancerOptions, LoadBalancer, PickContext } from './balancer.js';
import { matchesAvoid, normalizeWeight, randomIndex } from './weighted.js';

export class RoundRobinBalancer<E extends BalancedEndpoint> implements LoadBalancer<E> {
  private readonly endpoints: readonly E[];
  private readonly weights: Float64Array;
  /** nginx "current_weight" per endpoint. */
  private readonly current: Float64Array;
  private readonly uniform: boolean;
  /** Next index to try on the uniform path. */
  private cursor: number;

  constructor(endpoints: readonly E[], opts: BalancerOptions = {}) {
    this.endpoints = [...endpoints];
    const n = this.endpoints.length;
    this.weights = new Float64Array(n);
    this.current = new Float64Array(n);
    let uniform = true;
    for (let i = 0; i < n; i++) {
      this.weights[i] = normalizeWeight(this.endpoints[i]!.weight);
      if (this.weights[i] !== this.weights[0]) uniform = false;
    }
    this.uniform = uniform;
    // Random start: balancers are rebuilt on every config snapshot, and a fleet of sidecars
    // all starting at endpoint 0 would hit it in lockstep.
    this.cursor = n > 0 ? randomIndex(opts.random ?? Math.random, n) : 0;
  }

  pick(ctx: PickContext): E | undefined {
    return this.uniform ? this.pickUniform(ctx) : this.pickSmooth(ctx);
  }

  /** Equal weights make smooth WRR a plain rotation, so skip its O(n) pass. */
  private pickUniform(ctx: PickContext): E | undefined {
    const eps = this.endpoints;
    const n = eps.length;
    const avoid = ctx.avoid;
    let avoided = -1;
    let i = this.cursor;
    for (let k = 0; k < n; k++, i++) {
      if (i >= n) i = 0;
      const e = eps[i]!;
      if (!e.available) continue;
      if (matchesAvoid(e, avoid)) {
        if (avoided < 0) avoided = i;
        continue;
      }
      // A retry's pick (one with an endpoint to avoid) is extra, not a turn: moving the cursor for it would send the
      // next request's first attempt back to the endpoint that just failed, every time.
      if (avoid === undefined) this.cursor = i + 1 >= n ? 0 : i + 1;
      return e;
    }
    return avoided >= 0 ? eps[avoided] : undefined;
  }

  /**
   * nginx: every eligible endpoint gains its weight, the largest current wins (first on ties)
   * and pays back the eligible total. Ineligible endpoints neither gain nor pay.
   */
  private pickSmooth(ctx: PickContext): E | undefined {
    const eps = this.endpoints;
    const n = eps.length;
    const avoid = ctx.avoid;
    const cur = this.current;
    const w = this.weights;
    let best = -1;
    let bestCur = -Infinity;
    let total = 0;
    let avoided = -1;
    for (let i = 0; i < n; i++) {
      const e = eps[i]!;
      if (!e.available) continue;
      if (matchesAvoid(e, avoid)) {
        if (avoided < 0) avoided = i;
        continue;
      }
      const c = cur[i]! + w[i]!;
      if (avoid === undefined) cur[i] = c; // a retry's pick is not a turn (see pickUniform)
      total += w[i]!;
      if (c > bestCur) {
        bestCur = c;
        best = i;
      }
    }
    if (best < 0) return avoided >= 0 ? eps[avoided] : undefined;
    if (avoid === undefined) cur[best] = bestCur - total;
    return eps[best];
  }
}
