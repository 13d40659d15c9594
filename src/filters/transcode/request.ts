// The gRPC request message from the HTTP parts a binding maps: path variables, the JSON body (whole or one field)
// and query parameters (dotted paths to nested fields, repeated for repeated fields).
import type * as protobuf from 'protobufjs';
import { resolveChain, type Binding, type FieldChain } from './bindings.js';
import { jsonName, messageFromJson, type MappingOptions } from './json-mapping.js';
import { pb } from './pb.js';
import { JsonMappingError } from './wkt.js';

type Obj = Record<string, unknown>;

/** The encoded request message; throws JsonMappingError naming the field that does not fit. */
export function encodeRequest(b: Binding, vars: ReadonlyMap<string, string>, query: URLSearchParams, body: unknown, opts: MappingOptions): Uint8Array {
  const type = b.method.request;
  let json: Obj;
  if (b.body === '*') {
    if (body === undefined) json = {};
    else if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new JsonMappingError('', `the body must be a JSON object for ${type.fullName.slice(1)}`);
    else json = { ...(body as Obj) };
  } else if (b.bodyField) {
    json = body === undefined ? {} : { [b.bodyField.name]: body };
  } else json = {};
  for (const [field, value] of vars) setAt(json, b.pathFields.get(field)!, value, field);
  if (b.body !== '*') {
    const bound = new Set([...b.pathFields.keys(), b.body]);
    for (const [key, value] of query) {
      if (bound.has(key) || bound.has(key.split('.')[0]!)) continue;
      const chain = resolveChain(type, key);
      if (typeof chain === 'string') {
        if (opts.ignoreUnknown) continue;
        throw new JsonMappingError(key, `unknown query parameter "${key}": ${chain}`);
      }
      setAt(json, chain, value, key);
    }
  }
  const plain = messageFromJson(type, json, opts);
  return type.encode(type.fromObject(plain)).finish();
}

/** Sets the leaf of `chain` from its text (path and query values are text), creating the messages on the way. */
function setAt(json: Obj, chain: FieldChain, text: string, name: string): void {
  let at = json;
  for (let i = 0; i < chain.length - 1; i++) {
    const f = chain[i]!;
    const key = at[jsonName(f)] !== undefined ? jsonName(f) : f.name;
    const next = at[key];
    if (next === undefined || next === null) at = at[key] = {};
    else if (typeof next === 'object' && !Array.isArray(next)) at = next as Obj;
    else throw new JsonMappingError(name, `"${f.name}" is not an object in the body`);
  }
  const leaf = chain[chain.length - 1]!;
  if (leaf.map) throw new JsonMappingError(name, 'a map field cannot be set from the path or query');
  const value = fromText(leaf, text, name);
  if (leaf.repeated) {
    const prev = at[leaf.name];
    at[leaf.name] = Array.isArray(prev) ? [...(prev as unknown[]), value] : [value];
  } else at[leaf.name] = value;
}

const NUMERIC = new Set(['double', 'float', 'int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);
const WRAPPED: Record<string, string> = {
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.BoolValue': 'bool',
};

/** Text to the JSON value the mapping takes for this field (64-bit integers, enums, bytes and WKT strings stay text). */
function fromText(f: protobuf.Field | protobuf.MapField, text: string, name: string): unknown {
  const r = f.resolvedType;
  let scalar = f.type;
  if (r instanceof pb().Type) {
    const wrapped = WRAPPED[r.fullName];
    if (wrapped === undefined && !r.fullName.startsWith('.google.protobuf.')) throw new JsonMappingError(name, `"${f.name}" is a message (${r.fullName.slice(1)}): name one of its fields`);
    scalar = wrapped ?? 'string';
  }
  if (r instanceof pb().Enum) return /^-?\d+$/.test(text) ? Number(text) : text;
  if (scalar === 'bool') {
    if (text === 'true' || text === '1') return true;
    if (text === 'false' || text === '0') return false;
    throw new JsonMappingError(name, `"${text}" is not true or false`);
  }
  if (NUMERIC.has(scalar)) return text.trim() !== '' && !Number.isNaN(Number(text)) ? Number(text) : text;
  return text;
}
