// The proto3 JSON mapping over protobufjs reflection: JSON to a plain object Type.fromObject takes, and a decoded message
// back to JSON (json_name / lowerCamelCase, 64-bit integers as strings, enums by name, well-known types in their forms).
import type * as protobuf from 'protobufjs';
import { pb } from './pb.js';
import {
  bytesFromJson,
  describe,
  durationFromJson,
  durationToJson,
  fieldMaskFromJson,
  fieldMaskToJson,
  int64FromJson,
  JsonMappingError,
  lowerCamel,
  timestampFromJson,
  timestampToJson,
} from './wkt.js';

export interface MappingOptions {
  /** Unknown JSON fields are dropped instead of answered 400. */
  readonly ignoreUnknown: boolean;
  /** Fields at their default value are printed too. */
  readonly emitDefaults: boolean;
  /** Print proto field names instead of lowerCamelCase JSON names. */
  readonly protoNames: boolean;
}

type Obj = Record<string, unknown>;
type FieldLike = protobuf.Field | protobuf.MapField;

// Per-request conversions ask for the same names over and over: computed once per loaded field / type (the roots are
// rebuilt on reload, so weak maps let the old ones go).
const jsonNames = new WeakMap<FieldLike, string>();
const fieldsByName = new WeakMap<protobuf.Type, Map<string, FieldLike>>();
const fullNames = new WeakMap<protobuf.ReflectionObject, string>();

/** protobufjs builds `fullName` from the parent chain on every read: once per type here. */
export const nameOf = (t: protobuf.ReflectionObject): string => {
  let name = fullNames.get(t);
  if (name === undefined) {
    name = t.fullName;
    fullNames.set(t, name);
  }
  return name;
};

export const jsonName = (f: FieldLike): string => {
  let name = jsonNames.get(f);
  if (name === undefined) {
    const opt = (f.options as Obj | undefined)?.['json_name'];
    name = typeof opt === 'string' ? opt : lowerCamel(f.name);
    jsonNames.set(f, name);
  }
  return name;
};

/** A field by its JSON name or its proto name (both are accepted on input). */
export function fieldByJsonOrProtoName(type: protobuf.Type, key: string): FieldLike | undefined {
  let byName = fieldsByName.get(type);
  if (byName === undefined) {
    byName = new Map();
    for (const f of type.fieldsArray) byName.set(jsonName(f), f);
    for (const f of type.fieldsArray) byName.set(f.name, f); // the proto name wins where the two spellings collide
    fieldsByName.set(type, byName);
  }
  return byName.get(key);
}

const join = (path: string, key: string | number): string => (typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key);

/** JSON object to the plain object protobufjs's fromObject takes (proto names, longs as strings, enums as numbers). */
export function messageFromJson(type: protobuf.Type, json: unknown, opts: MappingOptions, path = ''): Obj {
  const wkt = wktFromJson(type, json, opts, path);
  if (wkt !== undefined) return wkt;
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new JsonMappingError(path, `expected an object for ${type.fullName.slice(1)}, got ${describe(json)}`);
  const out: Obj = {};
  let oneofsSeen: Map<string, string> | undefined;
  const obj = json as Obj;
  for (const key in obj) {
    if (!Object.prototype.hasOwnProperty.call(obj, key)) continue;
    const value = obj[key];
    const field = fieldByJsonOrProtoName(type, key);
    const at = join(path, key);
    if (!field) {
      if (opts.ignoreUnknown) continue;
      throw new JsonMappingError(at, `unknown field "${key}" in ${type.fullName.slice(1)}`);
    }
    if (value === null && !isValueType(field)) continue;
    if (field.partOf && field.partOf.oneof.length > 1) {
      oneofsSeen ??= new Map<string, string>();
      const other = oneofsSeen.get(field.partOf.name);
      if (other !== undefined && other !== field.name) throw new JsonMappingError(at, `oneof ${field.partOf.name} already set by "${other}"`);
      oneofsSeen.set(field.partOf.name, field.name);
    }
    out[field.name] = fieldFromJson(field, value, opts, at);
  }
  return out;
}

const isValueType = (f: FieldLike): boolean => {
  const r = f.resolvedType;
  if (r === null) return false;
  const name = nameOf(r);
  return name === '.google.protobuf.Value' || name === '.google.protobuf.NullValue';
};

function fieldFromJson(field: FieldLike, value: unknown, opts: MappingOptions, path: string): unknown {
  if (field instanceof pb().MapField || field.map) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new JsonMappingError(path, `expected an object (map), got ${describe(value)}`);
    const keyType = (field as protobuf.MapField).keyType;
    const out: Obj = {};
    for (const [k, v] of Object.entries(value as Obj)) {
      const at = join(path, k);
      out[mapKey(keyType, k, at)] = singleFromJson(field.type, field.resolvedType, v, opts, at);
    }
    return out;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) throw new JsonMappingError(path, `expected an array, got ${describe(value)}`);
    return value.map((v, i) => singleFromJson(field.type, field.resolvedType, v, opts, join(path, i)));
  }
  return singleFromJson(field.type, field.resolvedType, value, opts, path);
}

function mapKey(keyType: string, k: string, path: string): string {
  if (keyType === 'string') return k;
  if (keyType === 'bool') {
    if (k !== 'true' && k !== 'false') throw new JsonMappingError(path, `map key "${k}" is not a bool`);
    return k;
  }
  if (/64/.test(keyType)) return int64FromJson(k, keyType.startsWith('u') || keyType === 'fixed64', path);
  return String(int32FromJson(k, keyType, path));
}

function singleFromJson(typeName: string, resolved: protobuf.Type | protobuf.Enum | null, value: unknown, opts: MappingOptions, path: string): unknown {
  if (resolved instanceof pb().Type) return messageFromJson(resolved, value, opts, path);
  if (resolved instanceof pb().Enum) return enumFromJson(resolved, value, path);
  return scalarFromJson(typeName, value, path);
}

function enumFromJson(e: protobuf.Enum, value: unknown, path: string): number {
  if (value === null && nameOf(e) === '.google.protobuf.NullValue') return 0;
  if (typeof value === 'string') {
    const n = e.values[value];
    if (n === undefined) throw new JsonMappingError(path, `"${value}" is not a value of enum ${e.fullName.slice(1)} (${Object.keys(e.values).join(', ')})`);
    return n;
  }
  if (typeof value === 'number' && Number.isInteger(value) && Math.abs(value) <= 2 ** 31) return value;
  throw new JsonMappingError(path, `expected an enum name or number, got ${describe(value)}`);
}

const INT32_RANGE: Record<string, [number, number]> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
};

function int32FromJson(value: unknown, typeName: string, path: string): number {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new JsonMappingError(path, `expected an integer (${typeName}), got ${describe(value)}`);
  const [min, max] = INT32_RANGE[typeName]!;
  if (n < min || n > max) throw new JsonMappingError(path, `${n} is out of range for ${typeName}`);
  return n;
}

/** A scalar from JSON; what Type.fromObject then takes as it is. */
export function scalarFromJson(typeName: string, value: unknown, path: string): unknown {
  switch (typeName) {
    case 'string':
      if (typeof value !== 'string') throw new JsonMappingError(path, `expected a string, got ${describe(value)}`);
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw new JsonMappingError(path, `expected true or false, got ${describe(value)}`);
      return value;
    case 'bytes':
      return bytesFromJson(value, path);
    case 'double':
    case 'float':
      if (typeof value === 'number') return value;
      if (value === 'NaN') return NaN;
      if (value === 'Infinity') return Infinity;
      if (value === '-Infinity') return -Infinity;
      if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
      throw new JsonMappingError(path, `expected a number, got ${describe(value)}`);
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return int64FromJson(value, false, path);
    case 'uint64':
    case 'fixed64':
      return int64FromJson(value, true, path);
    default:
      return int32FromJson(value, typeName, path);
  }
}

const WRAPPERS: Record<string, string> = {
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.BoolValue': 'bool',
  '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
};

/** Well-known types with their own JSON form; undefined for every other message. */
function wktFromJson(type: protobuf.Type, json: unknown, opts: MappingOptions, path: string): Obj | undefined {
  const name = nameOf(type);
  if (!name.startsWith('.google.protobuf.')) return undefined;
  const wrapped = WRAPPERS[name];
  if (wrapped !== undefined) return { value: scalarFromJson(wrapped, json, path) };
  const text = (what: string): string => {
    if (typeof json !== 'string') throw new JsonMappingError(path, `expected a ${what} string, got ${describe(json)}`);
    return json;
  };
  switch (name) {
    case '.google.protobuf.Timestamp':
      return timestampFromJson(text('timestamp'), path);
    case '.google.protobuf.Duration':
      return durationFromJson(text('duration'), path);
    case '.google.protobuf.FieldMask':
      return fieldMaskFromJson(text('field mask'), path);
    case '.google.protobuf.Struct':
      return structFromJson(json, path);
    case '.google.protobuf.Value':
      return valueFromJson(json, path);
    case '.google.protobuf.ListValue':
      if (!Array.isArray(json)) throw new JsonMappingError(path, `expected an array, got ${describe(json)}`);
      return { values: json.map((v, i) => valueFromJson(v, join(path, i))) };
    case '.google.protobuf.Empty':
      if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new JsonMappingError(path, `expected {}, got ${describe(json)}`);
      if (Object.keys(json).length > 0 && !opts.ignoreUnknown) throw new JsonMappingError(path, 'google.protobuf.Empty takes no fields');
      return {};
    case '.google.protobuf.Any':
      return anyFromJson(type, json, opts, path);
    default:
      return undefined;
  }
}

function structFromJson(json: unknown, path: string): Obj {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new JsonMappingError(path, `expected an object, got ${describe(json)}`);
  const fields: Obj = {};
  for (const [k, v] of Object.entries(json as Obj)) fields[k] = valueFromJson(v, join(path, k));
  return { fields };
}

function valueFromJson(json: unknown, path: string): Obj {
  if (json === null) return { null_value: 0 };
  if (typeof json === 'number') return { number_value: json };
  if (typeof json === 'string') return { string_value: json };
  if (typeof json === 'boolean') return { bool_value: json };
  if (Array.isArray(json)) return { list_value: { values: json.map((v, i) => valueFromJson(v, join(path, i))) } };
  if (typeof json === 'object') return { struct_value: structFromJson(json, path) };
  throw new JsonMappingError(path, `cannot map ${describe(json)}`);
}

/** Any: {"@type": "type.googleapis.com/pkg.Msg", ...fields} (or "value" for a well-known type), packed to bytes. */
function anyFromJson(anyType: protobuf.Type, json: unknown, opts: MappingOptions, path: string): Obj {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new JsonMappingError(path, `expected an object with "@type", got ${describe(json)}`);
  const { '@type': url, ...rest } = json as Obj;
  if (url === undefined && Object.keys(rest).length === 0) return {};
  if (typeof url !== 'string') throw new JsonMappingError(join(path, '@type'), 'an Any needs "@type" naming its message type');
  const inner = lookupAnyType(anyType.root, url);
  if (!inner) throw new JsonMappingError(join(path, '@type'), `unknown message type "${url}" (not in the loaded .proto files)`);
  const special = hasSpecialJson(inner);
  const plain = special ? messageFromJson(inner, rest['value'], opts, join(path, 'value')) : messageFromJson(inner, rest, opts, path);
  return { type_url: url, value: inner.encode(inner.fromObject(plain)).finish() };
}

export function lookupAnyType(root: protobuf.NamespaceBase, url: string): protobuf.Type | undefined {
  const name = url.slice(url.lastIndexOf('/') + 1);
  try {
    return root.lookupType(name);
  } catch {
    return undefined;
  }
}

const SPECIAL = new Set([...Object.keys(WRAPPERS), '.google.protobuf.Timestamp', '.google.protobuf.Duration', '.google.protobuf.FieldMask', '.google.protobuf.Struct', '.google.protobuf.Value', '.google.protobuf.ListValue', '.google.protobuf.Any', '.google.protobuf.Empty']);
const hasSpecialJson = (t: protobuf.Type): boolean => SPECIAL.has(nameOf(t)) && nameOf(t) !== '.google.protobuf.Empty';

// ---- output ----

type Long = { toString(): string; low: number; high: number; unsigned: boolean };
const isLong = (v: unknown): v is Long => v !== null && typeof v === 'object' && 'low' in v && 'high' in v;
const bigOf = (v: unknown): bigint => (isLong(v) || typeof v === 'number' || typeof v === 'string' ? BigInt(v.toString()) : 0n);

/** A decoded message to JSON. */
export function messageToJson(type: protobuf.Type, msg: Obj, opts: MappingOptions): unknown {
  const wkt = wktToJson(type, msg, opts);
  if (wkt !== NOT_WKT) return wkt;
  const out: Obj = {};
  for (const field of type.fieldsArray) {
    const v = msg[field.name];
    const key = opts.protoNames ? field.name : jsonName(field);
    if (field.map) {
      const m = (v ?? {}) as Obj;
      if (Object.keys(m).length === 0 && !opts.emitDefaults) continue;
      const o: Obj = {};
      for (const [k, x] of Object.entries(m)) o[k] = singleToJson(field, x, opts);
      out[key] = o;
    } else if (field.repeated) {
      const a = (v ?? []) as unknown[];
      if (a.length === 0 && !opts.emitDefaults) continue;
      out[key] = a.map((x) => singleToJson(field, x, opts));
    } else if (field.resolvedType instanceof pb().Type) {
      if (v === null || v === undefined) continue;
      out[key] = singleToJson(field, v, opts);
    } else if (field.partOf) {
      // A oneof member (or proto3 `optional`): printed exactly when it was on the wire.
      if (!Object.prototype.hasOwnProperty.call(msg, field.name) || v === null || v === undefined) continue;
      out[key] = singleToJson(field, v, opts);
    } else {
      if (!opts.emitDefaults && isDefault(v)) continue;
      out[key] = singleToJson(field, v ?? field.typeDefault, opts);
    }
  }
  return out;
}

const isDefault = (v: unknown): boolean =>
  v === undefined || v === null || v === 0 || v === '' || v === false || (isLong(v) && v.low === 0 && v.high === 0) || ((v instanceof Uint8Array || Array.isArray(v)) && v.length === 0);

function singleToJson(field: FieldLike, v: unknown, opts: MappingOptions): unknown {
  const r = field.resolvedType;
  if (r instanceof pb().Type) return messageToJson(r, v as Obj, opts);
  if (r instanceof pb().Enum) {
    if (nameOf(r) === '.google.protobuf.NullValue') return null;
    return r.valuesById[v as number] ?? v;
  }
  return scalarToJson(field.type, v);
}

export function scalarToJson(typeName: string, v: unknown): unknown {
  switch (typeName) {
    case 'int64':
    case 'sint64':
    case 'sfixed64':
    case 'uint64':
    case 'fixed64':
      return bigOf(v).toString();
    case 'bytes':
      return Buffer.from((v ?? new Uint8Array(0)) as Uint8Array).toString('base64');
    case 'double':
    case 'float': {
      const n = v as number;
      return Number.isNaN(n) ? 'NaN' : n === Infinity ? 'Infinity' : n === -Infinity ? '-Infinity' : n;
    }
    default:
      return v;
  }
}

const NOT_WKT = Symbol('not a well-known type');

function wktToJson(type: protobuf.Type, msg: Obj, opts: MappingOptions): unknown {
  const name = nameOf(type);
  if (!name.startsWith('.google.protobuf.')) return NOT_WKT;
  const wrapped = WRAPPERS[name];
  if (wrapped !== undefined) return scalarToJson(wrapped, msg['value'] ?? (wrapped === 'string' ? '' : wrapped === 'bool' ? false : wrapped === 'bytes' ? new Uint8Array(0) : 0));
  switch (name) {
    case '.google.protobuf.Timestamp':
      return timestampToJson(bigOf(msg['seconds']), Number(msg['nanos'] ?? 0));
    case '.google.protobuf.Duration':
      return durationToJson(bigOf(msg['seconds']), Number(msg['nanos'] ?? 0));
    case '.google.protobuf.FieldMask':
      return fieldMaskToJson((msg['paths'] ?? []) as string[]);
    case '.google.protobuf.Struct':
      return structToJson(msg);
    case '.google.protobuf.Value':
      return valueToJson(msg);
    case '.google.protobuf.ListValue':
      return ((msg['values'] ?? []) as Obj[]).map(valueToJson);
    case '.google.protobuf.Empty':
      return {};
    case '.google.protobuf.Any':
      return anyToJson(type, msg, opts);
    default:
      return NOT_WKT;
  }
}

function structToJson(msg: Obj): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries((msg['fields'] ?? {}) as Obj)) out[k] = valueToJson(v as Obj);
  return out;
}

function valueToJson(v: Obj): unknown {
  if (v['struct_value'] != null) return structToJson(v['struct_value'] as Obj);
  if (v['list_value'] != null) return ((((v['list_value'] as Obj)['values'] ?? []) as Obj[])).map(valueToJson);
  if (Object.prototype.hasOwnProperty.call(v, 'number_value')) return v['number_value'];
  if (Object.prototype.hasOwnProperty.call(v, 'string_value')) return v['string_value'];
  if (Object.prototype.hasOwnProperty.call(v, 'bool_value')) return v['bool_value'];
  return null;
}

function anyToJson(anyType: protobuf.Type, msg: Obj, opts: MappingOptions): unknown {
  const url = msg['type_url'] as string | undefined;
  if (!url) return {};
  const inner = lookupAnyType(anyType.root, url);
  if (!inner) return { '@type': url, value: Buffer.from((msg['value'] ?? new Uint8Array(0)) as Uint8Array).toString('base64') };
  const decoded = inner.decode((msg['value'] ?? new Uint8Array(0)) as Uint8Array) as unknown as Obj;
  const json = messageToJson(inner, decoded, opts);
  return hasSpecialJson(inner) ? { '@type': url, value: json } : { '@type': url, ...(json as Obj) };
}
