// Test helper: one sidecar, or two chained (outbound -> inbound over h2c), in front of a grpc-js server.
import { startSidecar, type RunningSidecar } from './sidecar.js';

export interface Mesh {
  /** The port a client dials: the only sidecar's listener, or the outbound one. */
  readonly port: number;
  readonly sidecars: readonly RunningSidecar[];
  stop(): Promise<void>;
}

/** Extra YAML for the listener, route and app cluster of each sidecar, indented as their keys are. */
export interface MeshOptions {
  readonly listener?: string;
  readonly route?: string;
  readonly cluster?: string;
  /** Only for the inbound (or only) sidecar. */
  readonly innerRoute?: string;
  readonly innerCluster?: string;
  readonly innerListener?: string;
}

const sidecarYaml = (upstream: string, o: { listener?: string | undefined; route?: string | undefined; cluster?: string | undefined }): string => `
listeners:
  - name: in
    port: 0
${o.listener ?? ''}
    routes:
      - name: grpc
        match: { prefix: / }
        cluster: next
${o.route ?? ''}
clusters:
  - name: next
    protocol: h2c
    endpoints: ["${upstream}"]
${o.cluster ?? ''}
`;

/**
 * hops 0: the app itself (a baseline); 1: client -> sidecar -> app; 2: client -> outbound sidecar -> inbound sidecar
 * -> app (h2c throughout).
 */
export async function startMesh(app: string, hops: 0 | 1 | 2, o: MeshOptions = {}): Promise<Mesh> {
  if (hops === 0) return { port: Number(app.slice(app.lastIndexOf(':') + 1)), sidecars: [], stop: async () => {} };
  const inner = await startSidecar(sidecarYaml(app, { listener: o.innerListener ?? o.listener, route: o.innerRoute ?? o.route, cluster: o.innerCluster ?? o.cluster }));
  if (hops === 1) return { port: inner.ports.in!, sidecars: [inner], stop: async () => void (await inner.stop()) };
  const outer = await startSidecar(sidecarYaml(`127.0.0.1:${inner.ports.in!}`, o));
  return {
    port: outer.ports.in!,
    sidecars: [outer, inner],
    stop: async () => {
      await Promise.all([outer.stop(), inner.stop()]);
    },
  };
}
