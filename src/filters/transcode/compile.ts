// A transcode config compiled once per config snapshot: the protobufjs Root, the bindings by HTTP method, google.rpc.Status.
import path from 'node:path';
import type * as protobuf from 'protobufjs';
import { compileBindings, type Binding } from './bindings.js';
import type { MappingOptions } from './json-mapping.js';
import { loadDescriptorSet, loadProtos } from './load-protos.js';
import type { TranscodeConfig } from './schema.js';

export interface CompiledTranscoder {
  readonly root: protobuf.Root;
  /** Bindings by HTTP method, most specific first. */
  readonly byVerb: ReadonlyMap<string, readonly Binding[]>;
  readonly status: protobuf.Type;
  readonly mapping: MappingOptions;
  readonly config: TranscodeConfig;
}

/** Reads and checks the .proto files; throws ProtoError (file:line: what is wrong). */
export function compileTranscoder(config: TranscodeConfig, baseDir = process.cwd()): CompiledTranscoder {
  // google/rpc/status.proto rides along for decoding grpc-status-details-bin.
  const fromSet = config.descriptor_set !== undefined;
  const protos = fromSet ? loadDescriptorSet(config.descriptor_set!, baseDir) : loadProtos(config.proto, config.include, baseDir, ['google/rpc/status.proto']);
  // A descriptor set carries its own files: every service in it (or those named); google.rpc.Status comes bundled.
  const status = fromSet ? loadProtos([], [], baseDir, ['google/rpc/status.proto']).root.lookupType('google.rpc.Status') : protos.root.lookupType('google.rpc.Status');
  const bindings = compileBindings(protos, config.services, fromSet ? undefined : config.proto.map((f) => path.resolve(baseDir, f)));
  const byVerb = new Map<string, Binding[]>();
  for (const b of bindings) {
    const list = byVerb.get(b.verb) ?? [];
    list.push(b);
    byVerb.set(b.verb, list);
  }
  return {
    root: protos.root,
    byVerb,
    status,
    mapping: { ignoreUnknown: config.ignore_unknown_fields, emitDefaults: config.emit_defaults, protoNames: config.proto_field_names },
    config,
  };
}
