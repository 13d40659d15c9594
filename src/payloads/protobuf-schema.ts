// A route's protobuf_bodies compiled once per config snapshot: the message types and the schema fingerprint both
// sides of a hop compare before either trusts the other's protobuf.
import { createHash } from 'node:crypto';
import type * as protobuf from 'protobufjs';
import { loadDescriptorSet, loadProtos, ProtoError } from '../filters/transcode/load-protos.js';
import type { MappingOptions } from '../filters/transcode/json-mapping.js';
import { pb } from '../filters/transcode/pb.js';
import type { ProtobufBodiesConfig } from './schema.js';

export interface BodySchema {
  readonly request: protobuf.Type | undefined;
  readonly response: protobuf.Type | undefined;
  /** sha256 (first 16 hex digits) over the two message types and every type they reach, in canonical form. */
  readonly fingerprint: string;
  readonly limit: number;
  /** Encoding is strict (unknown fields are answered 400); decoding prints what the config asks for. */
  readonly encodeOptions: MappingOptions;
  readonly decodeOptions: MappingOptions;
}

/** Loads the .proto files (or the descriptor set) and finds the message types; throws ProtoError. */
export function compileBodySchema(cfg: ProtobufBodiesConfig, baseDir = process.cwd()): BodySchema {
  const loaded = cfg.descriptor_set !== undefined ? loadDescriptorSet(cfg.descriptor_set, baseDir) : loadProtos(cfg.proto, cfg.include, baseDir);
  const find = (name: string | undefined, what: string): protobuf.Type | undefined => {
    if (name === undefined) return undefined;
    const found = loaded.root.lookup(name.startsWith('.') ? name : `.${name}`);
    if (!(found instanceof pb().Type)) {
      const file = cfg.descriptor_set ?? cfg.proto[0] ?? '';
      throw new ProtoError(file, 1, `${what} message type "${name}" is not defined in ${cfg.descriptor_set ?? cfg.proto.join(', ')}`);
    }
    return found;
  };
  const request = find(cfg.request, 'request');
  const response = find(cfg.response, 'response');
  return {
    request,
    response,
    fingerprint: fingerprint(request, response),
    limit: cfg.max_body,
    encodeOptions: { ignoreUnknown: false, emitDefaults: false, protoNames: false },
    decodeOptions: { ignoreUnknown: false, emitDefaults: cfg.emit_defaults, protoNames: false },
  };
}

/** Canonical text of every type reachable from the roots (fields by number: name, type, label), hashed. */
export function fingerprint(...roots: (protobuf.Type | undefined)[]): string {
  const seen = new Map<string, string>();
  const visit = (t: protobuf.Type | protobuf.Enum): void => {
    if (seen.has(t.fullName)) return;
    if (t instanceof pb().Enum) {
      seen.set(t.fullName, `enum ${t.fullName} ${Object.entries(t.values).map(([k, v]) => `${k}=${v}`).sort().join(',')}`);
      return;
    }
    const type = t as protobuf.Type;
    seen.set(type.fullName, '');
    const fields = [...type.fieldsArray].sort((a, b) => a.id - b.id);
    const text = fields.map((f) => {
      const resolved = f.resolvedType;
      const tn = resolved ? resolved.fullName : f.type;
      const key = f.map ? `map<${(f as unknown as protobuf.MapField).keyType},${tn}>` : tn;
      return `${f.id}:${f.name}:${key}:${f.repeated ? 'rep' : f.partOf ? `oneof(${f.partOf.name})` : 'one'}`;
    });
    seen.set(type.fullName, `message ${type.fullName} {${text.join(';')}}`);
    for (const f of fields) if (f.resolvedType) visit(f.resolvedType as protobuf.Type | protobuf.Enum);
  };
  const parts: string[] = [];
  for (const r of roots) {
    parts.push(r === undefined ? '-' : r.fullName);
    if (r) visit(r);
  }
  const text = `${parts.join('|')}\n${[...seen.values()].sort().join('\n')}`;
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
