// The static source: the cluster's `endpoints` list from config, delivered once at start.
import type { DiscoveredEndpoint, DiscoverySink, DiscoverySource } from './source.js';

export class StaticSource implements DiscoverySource {
  readonly name = 'static';
  #endpoints: readonly DiscoveredEndpoint[];
  #sink: DiscoverySink | undefined;

  constructor(endpoints: readonly DiscoveredEndpoint[]) {
    this.#endpoints = endpoints;
  }

  start(sink: DiscoverySink): void {
    this.#sink = sink;
    sink.update(this.#endpoints);
  }

  /** Replaces the list (a config reload does this by building a new cluster; tests and embedders may do it in place). */
  set(endpoints: readonly DiscoveredEndpoint[]): void {
    this.#endpoints = endpoints;
    this.#sink?.update(endpoints);
  }

  stop(): void {
    this.#sink = undefined;
  }
}
