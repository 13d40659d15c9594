// The discovery seam: a source pushes a cluster's whole endpoint set; the cluster's EndpointSet diffs it.

/** One endpoint as a source names it. */
export interface DiscoveredEndpoint {
  readonly address: string;
  readonly weight: number;
  /** The endpoint's locality (zone), when its source knows it; locality-aware balancing prefers the local zone. */
  readonly zone?: string | undefined;
  /**
   * Priority level (lower is preferred, as SRV's priority): the cluster picks from the best level that has an
   * available endpoint and falls back level by level (RFC 2782). Absent: 0.
   */
  readonly priority?: number | undefined;
}

/** Where a source delivers what it learns (a cluster's EndpointSet, or a test recorder). */
export interface DiscoverySink {
  /** The source's whole current set; the receiver diffs it (adds, removals, weight changes) against what it has. */
  update(endpoints: readonly DiscoveredEndpoint[]): void;
  /** The source cannot be read now; the receiver keeps its last good set. */
  unavailable(reason: string): void;
}

/**
 * A discovery source. `start` delivers the initial set synchronously when the source can (static, file), so a
 * cluster never starts empty for want of an event-loop turn; later updates come whenever the source changes.
 * Every source passes src/discovery/discovery.contract.test.ts.
 */
export interface DiscoverySource {
  /** Shown in /clusters as each endpoint's source: "static", "file:/path". */
  readonly name: string;
  start(sink: DiscoverySink): void;
  stop(): void;
}

/** Config endpoint entry ("host:port" or { address, weight }) to a DiscoveredEndpoint. */
export function toDiscovered(e: string | { readonly address: string; readonly weight: number }): DiscoveredEndpoint {
  return typeof e === 'string' ? { address: e, weight: 1 } : { address: e.address, weight: e.weight };
}
