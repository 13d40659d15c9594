// A config snapshot turned into an immutable object graph; requests hold it until they finish, so a reload never cuts one off.
import type { LoadedConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { Cluster } from '../cluster/cluster.js';
import type { SidecarMetrics } from '../observability/catalogue.js';
import type { UpstreamRegistry } from '../upstream/registry.js';
import { ListenerRuntime } from './listener-runtime.js';

export class RuntimeSnapshot {
  readonly config: Config;
  readonly clusters: ReadonlyMap<string, Cluster>;
  readonly listeners: ReadonlyMap<string, ListenerRuntime>;
  readonly createdAt = Date.now();
  #inflight = 0;
  #retired = false;
  #released = false;

  constructor(loaded: LoadedConfig, registry: UpstreamRegistry, metrics: SidecarMetrics) {
    const config = loaded.config;
    this.config = config;
    const clusters = new Map<string, Cluster>();
    for (const c of config.clusters) clusters.set(c.name, new Cluster(c, registry, metrics));
    this.clusters = clusters;
    const listeners = new Map<string, ListenerRuntime>();
    for (const l of config.listeners) listeners.set(l.name, new ListenerRuntime(l, clusters, registry, metrics, loaded.clusterDefaults));
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

  /** Called when a newer snapshot takes over: resources go once the last request on this one is done. */
  retire(): void {
    this.#retired = true;
    if (this.#inflight === 0) this.#release();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    for (const c of this.clusters.values()) c.release();
    for (const l of this.listeners.values()) l.release();
  }
}
