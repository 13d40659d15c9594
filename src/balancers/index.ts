// Load-balancer entry point: policy factory, request-key hash and re-exports.

import type { BalancedEndpoint, BalancerOptions, BalancerPolicy, LoadBalancer } from './balancer.js';
import { LeastRequestBalancer } from './least-request.js';
import { RandomBalancer } from './random.js';
import { RingHashBalancer } from './ring-hash.js';
import { RoundRobinBalancer } from './round-robin.js';

export type { BalancedEndpoint, BalancerOptions, BalancerPolicy, LoadBalancer, PickContext, Random } from './balancer.js';
export { hashKey } from './hash.js';
export { LeastRequestBalancer } from './least-request.js';
export { RandomBalancer } from './random.js';
export { DEFAULT_RING_SIZE, MAX_RING_SIZE, RingHashBalancer } from './ring-hash.js';
export { RoundRobinBalancer } from './round-robin.js';

/** Build a balancer for one config snapshot's endpoint list (the list is copied and fixed thereafter). */
export function createBalancer<E extends BalancedEndpoint>(
  policy: BalancerPolicy,
  endpoints: readonly E[],
  opts: BalancerOptions = {},
): LoadBalancer<E> {
  switch (policy) {
    case 'round_robin':
      return new RoundRobinBalancer(endpoints, opts);
    case 'least_request':
      return new LeastRequestBalancer(endpoints, opts);
    case 'random':
      return new RandomBalancer(endpoints, opts);
    case 'ring_hash':
      return new RingHashBalancer(endpoints, opts);
    default: {
      // Config validation should make this unreachable; fail loudly at build time, never at pick time.
      const unknown: never = policy;
      throw new Error(`unknown load-balancing policy: ${String(unknown)}`);
    }
  }
}
