// Discovery entry point: the source a cluster's config asks for.
import type { ClusterConfig } from '../config/schema.js';
import { FileSource } from './file.js';
import { toDiscovered, type DiscoverySource } from './source.js';
import { StaticSource } from './static.js';
import { DnsSource } from './dns.js';
import { EtcdSource } from './etcd.js';

export type { DiscoveredEndpoint, DiscoverySink, DiscoverySource } from './source.js';
export { toDiscovered } from './source.js';
export { StaticSource } from './static.js';
export { FileSource, parseEndpointFile } from './file.js';
export { DnsSource } from './dns.js';
export { EtcdSource } from './etcd.js';

/** The cluster's discovery source: `discovery.file`, `.dns` or `.etcd` when set, else its static `endpoints`. */
export function discoveryFor(config: ClusterConfig): DiscoverySource {
  const d = config.discovery;
  if (d?.file) return new FileSource(d.file.path);
  if (d?.dns) {
    return new DnsSource({
      name: d.dns.name,
      type: d.dns.type,
      port: d.dns.port,
      servers: d.dns.servers,
      ttlFloorMs: d.dns.ttl_floor,
      ttlCeilingMs: d.dns.ttl_ceiling,
      timeoutMs: d.dns.timeout,
    });
  }
  if (d?.etcd) return new EtcdSource({ endpoints: d.etcd.endpoints, prefix: d.etcd.prefix, service: d.etcd.service, timeoutMs: d.etcd.timeout });
  return new StaticSource((config.endpoints ?? []).map(toDiscovered));
}
