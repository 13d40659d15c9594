// Reading the sidecar's admin endpoints in tests: /clusters state and /metrics text.
import { httpRequest } from './strict-net.js';

export interface EndpointState {
  address: string;
  /** One word: healthy | unhealthy | ejected | unknown. */
  health: string;
  routable: boolean;
  failed_active_check: boolean;
  ejected: boolean;
  ejected_until: string | null;
  ejections: number;
  requests: number;
}

export interface ClusterState {
  name: string;
  panic: boolean;
  endpoints: EndpointState[];
}

export async function clusters(adminPort: number): Promise<ClusterState[]> {
  return (JSON.parse((await httpRequest(adminPort, { path: '/clusters' })).body) as { clusters: ClusterState[] }).clusters;
}

export async function metricsText(adminPort: number): Promise<string> {
  return (await httpRequest(adminPort, { path: '/metrics' })).body;
}
