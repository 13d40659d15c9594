// Upstream connection pools shared across config snapshots: a reload that keeps an endpoint keeps its warm connections.
import { systemClock, type Clock } from '../core/clock.js';
import { tcpConnector, type Connector } from './connector.js';
import { Http1Upstream } from './http1/pool.js';
import { Http2Upstream } from './http2.js';
import type { Upstream, UpstreamOptions } from './upstream.js';

export type UpstreamProtocol = 'http1' | 'h2c';

/** Live counters of one endpoint, shared by every snapshot that uses it. */
export class EndpointStats {
  active = 0;
  requests = 0;
  failures = 0;
  lastUsed = 0;
}

interface Entry {
  readonly upstream: Upstream;
  /** Counters per owning cluster: two clusters may share a pool, never their numbers. */
  readonly stats: Map<string, { readonly stats: EndpointStats; refs: number }>;
  refs: number;
}

export interface UpstreamLease {
  readonly upstream: Upstream;
  readonly stats: EndpointStats;
  release(): void;
}

export class UpstreamRegistry {
  /** How every pool (and health checker) of this registry connects to its endpoints. */
  readonly connector: Connector;
  /** The clock of every pool of this registry (and of the clusters and health checkers built on it). */
  readonly clock: Clock;
  readonly #entries = new Map<string, Entry>();

  constructor(connector: Connector = tcpConnector, clock: Clock = systemClock) {
    this.connector = connector;
    this.clock = clock;
  }

  /** The pool for an endpoint, shared by every cluster (and snapshot) that uses it with the same settings. */
  acquire(protocol: UpstreamProtocol, opts: UpstreamOptions, owner: string): UpstreamLease {
    const key = `${protocol}|${opts.address}|${opts.connectTimeout}|${opts.maxConnections}|${opts.keepAliveTimeout}|${opts.maxRequestsPerConnection}|${opts.streamIdleTimeout}|${opts.maxConcurrentStreams}|${opts.maxSharePerDownstream}|${opts.reclaimStalledAfter}`;
    let e = this.#entries.get(key);
    if (!e) {
      const upstream = protocol === 'h2c' ? new Http2Upstream(opts, this.connector) : new Http1Upstream(opts, this.connector, this.clock);
      e = { upstream, stats: new Map(), refs: 0 };
      this.#entries.set(key, e);
    }
    e.refs++;
    const entry = e;
    let owned = entry.stats.get(owner);
    if (owned === undefined) entry.stats.set(owner, (owned = { stats: new EndpointStats(), refs: 0 }));
    owned.refs++;
    const counters = owned;
    let released = false;
    return {
      upstream: entry.upstream,
      stats: counters.stats,
      release: () => {
        if (released) return;
        released = true;
        if (--counters.refs === 0) entry.stats.delete(owner);
        if (--entry.refs === 0) {
          this.#entries.delete(key);
          // close() lets in-flight requests on the old snapshot finish first.
          entry.upstream.close().catch(() => {});
        }
      },
    };
  }

  async closeAll(): Promise<void> {
    const all = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.allSettled(all.map((e) => e.upstream.close()));
  }
}
