// Upstream connection pools shared across config snapshots: a reload that keeps an endpoint keeps its warm connections.
import { systemClock, type Clock } from '../core/clock.js';
import { tcpConnector, type Connector } from './connector.js';
import { Http1Upstream } from './http1/pool.js';
import { Http2Upstream } from './http2.js';
import type { Upstream, UpstreamOptions } from './upstream.js';
import type { ClusterTlsConfig } from '../config/schema.js';
import type { TlsEnv } from '../security/tls-material.js';
import type { TlsClient } from './tls-connector.js';

/** h2: HTTP/2 over TLS (the same sessions as h2c, on the TLS connector). */
export type UpstreamProtocol = 'http1' | 'h2c' | 'h2';

/** A connector other than the registry's own (TLS), and a key naming its settings (pools of different keys never mix). */
export interface Transport {
  readonly connector: Connector;
  readonly key: string;
  release(): void;
}

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
  readonly #tlsEnv: TlsEnv | undefined;
  /** The TLS client class, given by useTls once a config with TLS clusters loaded it (lazily: plaintext costs no TLS code). */
  #TlsClient: typeof TlsClient | undefined;
  readonly #tls = new Map<string, { client: TlsClient; refs: number }>();

  /**
   * `tlsEnv`: logger and metrics for TLS clusters (their failures and reloads); without it TLS clusters cannot be made.
   * `clock`: the clock of every pool of this registry (and of the clusters and health checkers built on it).
   */
  constructor(connector: Connector = tcpConnector, tlsEnv?: TlsEnv, clock: Clock = systemClock) {
    this.connector = connector;
    this.#tlsEnv = tlsEnv;
    this.clock = clock;
  }

  /**
   * The TLS transport of a cluster, shared by the snapshots that keep the same settings (so their pools and warm
   * connections carry over a reload). Throws when its files cannot be loaded.
   */
  /** Makes TLS clusters possible: `client` is upstream/tls-connector.ts's TlsClient, loaded on demand. */
  useTls(client: typeof TlsClient): void {
    this.#TlsClient = client;
  }

  tlsTransport(cluster: string, cfg: ClusterTlsConfig, protocol: UpstreamProtocol): Transport {
    const key = JSON.stringify([cluster, protocol, cfg]);
    let e = this.#tls.get(key);
    if (!e) {
      if (!this.#tlsEnv) throw new Error('this registry has no TLS environment');
      if (!this.#TlsClient) throw new Error('TLS upstream code not loaded (UpstreamRegistry.useTls)');
      e = { client: new this.#TlsClient(cluster, cfg, protocol === 'h2' ? ['h2'] : ['http/1.1'], this.#tlsEnv), refs: 0 };
      this.#tls.set(key, e);
    }
    e.refs++;
    const entry = e;
    let released = false;
    return {
      connector: entry.client.connector,
      key,
      release: () => {
        if (released) return;
        released = true;
        if (--entry.refs === 0) {
          this.#tls.delete(key);
          entry.client.close();
        }
      },
    };
  }

  /** The pool for an endpoint, shared by every cluster (and snapshot) that uses it with the same settings. */
  acquire(protocol: UpstreamProtocol, opts: UpstreamOptions, owner: string, transport?: Transport): UpstreamLease {
    const key = `${transport?.key ?? ''}|${protocol}|${opts.address}|${opts.connectTimeout}|${opts.maxConnections}|${opts.keepAliveTimeout}|${opts.maxRequestsPerConnection}|${opts.streamIdleTimeout}|${opts.maxConcurrentStreams}|${opts.maxSharePerDownstream}|${opts.reclaimStalledAfter}|${opts.reclaimUploadMinRate}|${opts.h2KeepaliveInterval}|${opts.h2KeepaliveTimeout}`;
    let e = this.#entries.get(key);
    if (!e) {
      const connector = transport?.connector ?? this.connector;
      const upstream = protocol === 'http1' ? new Http1Upstream(opts, connector, this.clock) : new Http2Upstream(opts, connector, this.clock);
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
    for (const t of this.#tls.values()) t.client.close();
    this.#tls.clear();
  }
}
