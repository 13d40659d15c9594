// Load-time checks of transcode filters (run with the TLS file checks on every load: validate, run, reload): the
// .proto files parse and every rule names real fields, the route's clusters speak HTTP/2, and it is a route filter.
import type { Config } from '../../config/schema.js';
import { UnknownServiceError } from './bindings.js';
import { compileTranscoder } from './compile.js';
import { ProtoError } from './load-protos.js';
import type { TranscodeConfig } from './schema.js';

type Issue = { path: (string | number)[]; message: string };

export function transcodeIssues(config: Config): Issue[] {
  const out: Issue[] = [];
  const protocols = new Map(config.clusters.map((c) => [c.name, c.protocol]));
  config.listeners.forEach((l, li) => {
    l.filters.forEach((f, fi) => {
      if (f.type === 'transcode' && !f.disabled) out.push({ path: ['listeners', li, 'filters', fi, 'type'], message: 'transcode is a route filter: put it in routes[].filters of the routes whose cluster serves the gRPC service' });
    });
    l.routes.forEach((r, ri) => {
      (r.filters ?? []).forEach((f, fi) => {
        if (f.type !== 'transcode' || f.disabled) return;
        const base = ['listeners', li, 'routes', ri, 'filters', fi, 'config'];
        // The route's prefix_rewrite runs inside its filters, on the gRPC path the transcoder made: it would cut it.
        if (r.prefix_rewrite !== undefined) out.push({ path: ['listeners', li, 'routes', ri, 'prefix_rewrite'], message: 'prefix_rewrite does not combine with a transcode filter (it would rewrite the gRPC path); bindings match the path as received, so write the prefix into the google.api.http rules' });
        const clusters = r.cluster !== undefined ? [r.cluster] : (r.weighted_clusters ?? []).map((w) => w.cluster);
        if (clusters.length === 0) out.push({ path: base.slice(0, -1), message: 'transcode needs a route with a cluster (cluster or weighted_clusters) that serves the gRPC service' });
        for (const c of clusters) {
          const p = protocols.get(c);
          if (p !== undefined && p !== 'h2c' && p !== 'h2') out.push({ path: base.slice(0, -1), message: `transcode sends gRPC, which needs HTTP/2: cluster "${c}" has protocol ${p}; set protocol: h2c (or h2 with tls)` });
        }
        try {
          compileTranscoder(f.config as TranscodeConfig);
        } catch (e) {
          if (e instanceof UnknownServiceError) out.push({ path: [...base, 'services'], message: e.message });
          else out.push({ path: [...base, 'proto'], message: e instanceof ProtoError ? e.message : `cannot load the .proto files: ${(e as Error).message}` });
        }
      });
    });
  });
  return out;
}
