// A config snapshot turned into an immutable object graph; requests hold it until they finish (or drain_timeout after
// retirement), so a reload never cuts one off and a request that never ends cannot pin the old graph for ever.
import type { LoadedConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Cluster } from '../cluster/cluster.js';
import type { ClusterStateRegistry } from '../cluster/endpoint-state.js';
import type { SidecarMetrics } from '../observability/catalogue.js';
import type { UpstreamRegistry } from '../upstream/registry.js';
import { ListenerRuntime } from './listener-runtime.js';
import { ViaNames } from './via.js';

export class RuntimeSnapshot {
  readonly config: Config;
  readonly clusters: ReadonlyMap<string, Cluster>;
  readonly listeners: ReadonlyMap<string, ListenerRuntime>;
  readonly createdAt = Date.now();
  #inflight = 0;
  #retired = false;
  #released = false;
  #drainTimer: NodeJS.Timeout | undefined;

  /**
   * `states`: endpoint health and ejection state shared with the previous and next snapshots (kept across reloads);
   * `vias`: the listeners' Via names, likewise process-owned.
   */
  constructor(loaded: LoadedConfig, registry: UpstreamRegistry, metrics: SidecarMetrics, states?: ClusterStateRegistry, vias: ViaNames = new ViaNames()) {
    const config = loaded.config;
    this.config = config;
    const clusters = new Map<string, Cluster>();
    for (const c of config.clusters) clusters.set(c.name, new Cluster(c, registry, metrics, { states }));
    this.clusters = clusters;
    const listeners = new Map<string, ListenerRuntime>();
    for (const l of config.listeners) listeners.set(l.name, new ListenerRuntime(l, clusters, registry, metrics, loaded.clusterDefaults, vias.of(l.name)));
    this.listeners = listeners;
  }

  get inflight(): number {
    return this.#inflight;
  }

  enter(): void {
    this.#inflight++;
  }

  leave(): void {
    if (--this.#inflight === 0 && this.#retired) this.#release();
  }

  /**
   * Called when a newer snapshot takes over: resources (health checkers, pools, timers) go once the last request on
   * this one is done, or `drainMs` from now (default: this config's drain_timeout), whichever comes first. Requests
   * still running then carry on; pools close once they are done.
   */
  retire(drainMs: number = this.config.drain_timeout): void {
    if (this.#retired) return;
    this.#retired = true;
    if (this.#inflight === 0) {
      this.#release();
      return;
    }
    this.#drainTimer = setTimeout(() => this.#release(), drainMs);
    this.#drainTimer.unref();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    clearTimeout(this.#drainTimer);
    for (const c of this.clusters.values()) c.release();
    for (const l of this.listeners.values()) l.release();
  }
}
