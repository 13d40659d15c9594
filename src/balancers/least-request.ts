// least_request policy: power of two choices, comparing in-flight requests per unit of weight.

import type { BalancedEndpoint, BalancerOptions, LoadBalancer, PickContext, Random } from './balancer.js';
import { WeightedPicker } from './weighted.js';

/**
 * Two distinct candidates are drawn weight-proportionally (uniformly when weights are equal: classic P2C);
 * the one with the lower active/weight wins. Ties go to the first draw, so with equal load the policy
 * degrades to weighted random and still honours weights.
 */
export class LeastRequestBalancer<E extends BalancedEndpoint> implements LoadBalancer<E> {
  private readonly picker: WeightedPicker<E>;
  private readonly random: Random;

  constructor(endpoints: readonly E[], opts: BalancerOptions = {}) {
    this.picker = new WeightedPicker([...endpoints]);
    this.random = opts.random ?? Math.random;
  }

  pick(ctx: PickContext): E | undefined {
    const p = this.picker;
    const eps = p.endpoints;
    const a = p.pick(this.random, ctx.avoid);
    if (a < 0) return undefined;
    // a may be the avoided endpoint only when nothing else is eligible; pickOther then finds nothing.
    const b = p.pickOther(this.random, ctx.avoid, a);
    if (b < 0) return eps[a];
    const ea = eps[a]!;
    const eb = eps[b]!;
    // active_b / w_b < active_a / w_a, cross-multiplied to avoid division.
    return eb.active * p.weights[a]! < ea.active * p.weights[b]! ? eb : ea;
  }
}
