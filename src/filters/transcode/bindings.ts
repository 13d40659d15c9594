// The HTTP bindings of a transcoder: its services' google.api.http rules (and additional_bindings) plus the default
// POST /pkg.Service/Method of every method, each checked against the messages (unknown fields fail with file:line).
import path from 'node:path';
import type * as protobuf from 'protobufjs';
import { pb } from './pb.js';
import { jsonName } from './json-mapping.js';
import { lineOf, ProtoError, type LoadedProtos } from './load-protos.js';
import { parseTemplate, specificity, TemplateError, type PathTemplate } from './path-template.js';

export interface MethodInfo {
  /** The gRPC :path, e.g. /pkg.v1.Things/GetThing. */
  readonly grpcPath: string;
  readonly request: protobuf.Type;
  readonly response: protobuf.Type;
  readonly serverStreaming: boolean;
}

export type FieldChain = readonly (protobuf.Field | protobuf.MapField)[];

export interface Binding {
  readonly method: MethodInfo;
  /** GET, POST..., or a custom rule's kind as written. */
  readonly verb: string;
  readonly template: PathTemplate;
  /** Path variables with the fields they set, resolved at load time. */
  readonly pathFields: ReadonlyMap<string, FieldChain>;
  /** '' (no body), '*' (the whole request message) or a top-level request field. */
  readonly body: string;
  readonly bodyField: protobuf.Field | protobuf.MapField | undefined;
  /** A top-level response field sent as the whole body, or undefined for the whole message. */
  readonly responseField: protobuf.Field | protobuf.MapField | undefined;
}

interface HttpRuleJson {
  get?: string;
  put?: string;
  post?: string;
  delete?: string;
  patch?: string;
  custom?: { kind?: string; path?: string };
  body?: string;
  response_body?: string;
  additional_bindings?: HttpRuleJson | HttpRuleJson[];
}

/** Every binding of the named services (all services of `files`, absolute, when `services` is empty), most specific first. */
export function compileBindings(protos: LoadedProtos, services: readonly string[], files: readonly string[] | undefined): Binding[] {
  const chosen = services.length > 0 ? services.map((s) => serviceByName(protos, s)) : allServices(protos.root, files === undefined ? undefined : new Set(files.map((f) => path.resolve(f))));
  const out: Binding[] = [];
  for (const svc of chosen) {
    for (const m of svc.methodsArray) {
      m.resolve();
      if (m.requestStream) continue; // client and bidi streaming have no JSON form here (docs/transcoding.md)
      const info: MethodInfo = {
        grpcPath: `/${svc.fullName.slice(1)}/${m.name}`,
        request: m.resolvedRequestType!,
        response: m.resolvedResponseType!,
        serverStreaming: m.responseStream === true,
      };
      const where = (needle: string): ProtoError['line'] => {
        const text = protos.sources.get(m.filename ?? '') ?? '';
        const at = lineOf(text, new RegExp(`"${needle.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`));
        return at > 1 ? at : lineOf(text, new RegExp(`rpc\\s+${m.name}\\b`));
      };
      const fail = (needle: string, detail: string): never => {
        throw new ProtoError(m.filename ?? svc.filename ?? '(unknown file)', where(needle), `${info.grpcPath.slice(1)}: ${detail}`);
      };
      for (const rule of httpRules(m)) {
        const verbPath = verbOf(rule);
        if (!verbPath) fail('', 'google.api.http rule without get, put, post, delete, patch or custom');
        const [verb, source] = verbPath!;
        let template: PathTemplate;
        try {
          template = parseTemplate(source);
        } catch (e) {
          if (e instanceof TemplateError) fail(source, e.message);
          throw e;
        }
        const pathFields = new Map<string, FieldChain>();
        for (const v of template!.variables) {
          const chain = resolveChain(info.request, v.field);
          if (typeof chain === 'string') fail(source, `path variable {${v.field}}: ${chain}`);
          pathFields.set(v.field, chain as FieldChain);
        }
        const body = rule.body ?? '';
        let bodyField: protobuf.Field | protobuf.MapField | undefined;
        if (body !== '' && body !== '*') {
          bodyField = info.request.fields[body];
          if (!bodyField) fail(body, `body "${body}" names no field of ${info.request.fullName.slice(1)} (fields: ${info.request.fieldsArray.map((f) => f.name).join(', ')})`);
        }
        let responseField: protobuf.Field | protobuf.MapField | undefined;
        if (rule.response_body) {
          responseField = info.response.fields[rule.response_body];
          if (!responseField) fail(rule.response_body, `response_body "${rule.response_body}" names no field of ${info.response.fullName.slice(1)}`);
        }
        out.push({ method: info, verb, template: template!, pathFields, body, bodyField, responseField });
      }
      out.push({ method: info, verb: 'POST', template: parseTemplate(info.grpcPath), pathFields: new Map(), body: '*', bodyField: undefined, responseField: undefined });
    }
  }
  return out.sort((a, b) => specificity(b.template) - specificity(a.template));
}

function serviceByName(protos: LoadedProtos, name: string): protobuf.Service {
  const found = protos.root.lookup(name.replace(/^\./, ''));
  if (found instanceof pb().Service) return found;
  const known = allServices(protos.root, undefined).map((s) => s.fullName.slice(1));
  throw new UnknownServiceError(`no service "${name}" in the .proto files${known.length ? ` (services: ${known.join(', ')})` : ''}`);
}

/** `services` names a service the files do not define (reported at the `services` key, not at a file). */
export class UnknownServiceError extends Error {}

function allServices(ns: protobuf.NamespaceBase, files: Set<string> | undefined): protobuf.Service[] {
  const out: protobuf.Service[] = [];
  for (const child of ns.nestedArray) {
    if (child instanceof pb().Service) {
      if (!files || (child.filename !== null && files.has(child.filename))) out.push(child);
    } else if (child instanceof pb().Namespace || child instanceof pb().Type) out.push(...allServices(child, files));
  }
  return out;
}

/** The method's rule and its additional_bindings, flattened (nested bindings may not nest again). */
function httpRules(m: protobuf.Method): HttpRuleJson[] {
  const out: HttpRuleJson[] = [];
  for (const opt of (m.parsedOptions ?? []) as Record<string, unknown>[]) {
    const rule = opt['(google.api.http)'] as HttpRuleJson | undefined;
    if (!rule) continue;
    out.push(rule);
    const extra = rule.additional_bindings;
    for (const r of extra === undefined ? [] : Array.isArray(extra) ? extra : [extra]) out.push(r);
  }
  return out;
}

function verbOf(rule: HttpRuleJson): [string, string] | undefined {
  for (const v of ['get', 'put', 'post', 'delete', 'patch'] as const) {
    const p = rule[v];
    if (typeof p === 'string') return [v.toUpperCase(), p];
  }
  if (rule.custom?.kind && rule.custom.path) return [rule.custom.kind, rule.custom.path];
  return undefined;
}

/** A dotted field path to its chain of fields (proto names), or what is wrong with it. */
export function resolveChain(type: protobuf.Type, dotted: string): FieldChain | string {
  const chain: (protobuf.Field | protobuf.MapField)[] = [];
  let t: protobuf.Type = type;
  const parts = dotted.split('.');
  for (let i = 0; i < parts.length; i++) {
    const name = parts[i]!;
    const f = t.fields[name] ?? t.fieldsArray.find((x) => jsonName(x) === name);
    if (!f) return `no field "${name}" in ${t.fullName.slice(1)} (fields: ${t.fieldsArray.map((x) => x.name).join(', ') || 'none'})`;
    f.resolve();
    chain.push(f);
    if (i < parts.length - 1) {
      if (!(f.resolvedType instanceof pb().Type) || f.repeated || f.map) return `"${name}" is not a singular message field, so "${parts.slice(i + 1).join('.')}" cannot be inside it`;
      t = f.resolvedType;
    }
  }
  return chain;
}
