// Discovery entry point: the source a cluster's config asks for.
import type { ClusterConfig } from '../config/schema.js';
import { FileSource } from './file.js';
import { toDiscovered, type DiscoverySource } from './source.js';
import { StaticSource } from './static.js';

export type { DiscoveredEndpoint, DiscoverySink, DiscoverySource } from './source.js';
export { toDiscovered } from './source.js';
export { StaticSource } from './static.js';
export { FileSource, parseEndpointFile } from './file.js';

/** The cluster's discovery source: `discovery.file` when set, else its static `endpoints`. */
export function discoveryFor(config: ClusterConfig): DiscoverySource {
  if (config.discovery?.file) return new FileSource(config.discovery.file.path);
  return new StaticSource((config.endpoints ?? []).map(toDiscovered));
}
