// random policy: weighted random choice over available endpoints.

import type { BalancedEndpoint, BalancerOptions, LoadBalancer, PickContext, Random } from './balancer.js';
import { WeightedPicker } from './weighted.js';

export class RandomBalancer<E extends BalancedEndpoint> implements LoadBalancer<E> {
  private readonly picker: WeightedPicker<E>;
  private readonly random: Random;

  constructor(endpoints: readonly E[], opts: BalancerOptions = {}) {
    this.picker = new WeightedPicker([...endpoints]);
    this.random = opts.random ?? Math.random;
  }

  pick(ctx: PickContext): E | undefined {
    const i = this.picker.pick(this.random, ctx.avoid);
    return i >= 0 ? this.picker.endpoints[i] : undefined;
  }
}
