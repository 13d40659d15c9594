// Load-time checks of routes[].protobuf_bodies (with the TLS and transcode checks on every load: validate, run,
// reload): the .proto files or descriptor set load and name the message types.
import type { Config } from '../config/schema.js';
import { ProtoError } from '../filters/transcode/load-protos.js';
import { compileBodySchema } from './protobuf-schema.js';

type Issue = { path: (string | number)[]; message: string };

export function payloadIssues(config: Config): Issue[] {
  const out: Issue[] = [];
  config.listeners.forEach((l, li) =>
    l.routes.forEach((r, ri) => {
      if (!r.protobuf_bodies) return;
      try {
        compileBodySchema(r.protobuf_bodies);
      } catch (e) {
        const key = r.protobuf_bodies.descriptor_set !== undefined ? 'descriptor_set' : 'proto';
        out.push({ path: ['listeners', li, 'routes', ri, 'protobuf_bodies', key], message: e instanceof ProtoError ? e.message : `cannot load the schema: ${(e as Error).message}` });
      }
    }),
  );
  return out;
}
