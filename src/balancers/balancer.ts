// Load-balancer contract shared by every policy: endpoint view, pick context and options.

/** What a balancer needs to know about an upstream endpoint. */
export interface BalancedEndpoint {
  readonly address: string;      // "host:port"
  readonly weight: number;       // >= 1
  readonly active: number;       // in-flight requests right now (read at pick time; it changes)
  readonly available: boolean;   // false when unhealthy/ejected: never pick it while another is available
}

/** Per-request input to a pick. */
export interface PickContext {
  /** 32-bit unsigned hash of the request's hash key (ring_hash), or undefined when the request has none. */
  readonly hash: number | undefined;
  /**
   * Endpoint to avoid if any other is available (e.g. the one a previous attempt failed on).
   * Matched by identity or by equal `address`, so an endpoint from an older snapshot still counts.
   */
  readonly avoid?: BalancedEndpoint | undefined;
}

/** A policy bound to a fixed endpoint list; `active`/`available` are read live on every pick. */
export interface LoadBalancer<E extends BalancedEndpoint> {
  pick(ctx: PickContext): E | undefined;   // undefined only when the endpoint list is empty or none is available
}

/** Uniform random source in [0,1); injectable so tests are deterministic. */
export type Random = () => number; // [0,1)

export type BalancerPolicy = 'round_robin' | 'least_request' | 'random' | 'ring_hash';

export interface BalancerOptions {
  /** ring_hash only: approximate total number of points on the ring (default 1024). */
  readonly ringSize?: number;
  /** Random source (default Math.random). */
  readonly random?: Random;
}
