// api_key: a request's key is hashed (SHA-256) and compared, in constant time, against every configured key's hash;
// the matching key's name goes to the context (access log `api_key`, rbac `api_keys`). The key is never logged.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ProxyError } from '../../core/errors.js';
import { decodeQueryComponent } from '../../core/query.js';
import type { Layer } from '../../core/service.js';
import type { Counter } from '../../observability/metrics.js';
import type { FilterFactory } from '../filter.js';
import type { ApiKeyConfig } from './schema.js';

export interface NamedKey {
  readonly name: string;
  /** SHA-256 of the key. */
  readonly hash: Buffer;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** A configured key value: `sha256:<64 hex>` is already a hash, anything else is the key itself. */
export function keyHash(value: string): Buffer {
  const m = /^sha256:([0-9a-fA-F]{64})$/.exec(value.trim());
  return m ? Buffer.from(m[1]!, 'hex') : sha256(value.trim());
}

/** `name key` lines; blank lines and # comments ignored. */
export function parseKeysFile(text: string, file: string): NamedKey[] {
  const out: NamedKey[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    const m = /^(\S+)\s+(\S+)$/.exec(t);
    if (!m) throw new Error(`${file}:${i + 1}: expected "name key"`);
    out.push({ name: m[1]!, hash: keyHash(m[2]!) });
  });
  return out;
}

export function loadKeys(cfg: ApiKeyConfig, env: NodeJS.ProcessEnv = process.env): NamedKey[] {
  const keys: NamedKey[] = [];
  if (cfg.keys_file !== undefined) keys.push(...parseKeysFile(readFileSync(cfg.keys_file, 'utf8'), cfg.keys_file));
  for (const k of cfg.keys_env ?? []) {
    const v = env[k.env];
    if (v === undefined || v.trim() === '') throw new Error(`api_key: environment variable ${k.env} (key ${k.name}) is not set`);
    keys.push({ name: k.name, hash: keyHash(v) });
  }
  return keys;
}

/** The name of the key whose hash equals the presented key's; every key is compared, so timing says nothing. */
export function matchKey(keys: readonly NamedKey[], presented: string): string | undefined {
  const h = sha256(presented);
  let found: string | undefined;
  for (const k of keys) if (timingSafeEqual(k.hash, h) && found === undefined) found = k.name;
  return found;
}

/** The path without the query parameter `name` (every occurrence, matched decoded); the other parameters as sent. */
export function withoutQueryParam(path: string, q: number, name: string): string {
  const kept = path
    .slice(q + 1)
    .split('&')
    .filter((kv) => {
      const i = kv.indexOf('=');
      return decodeQueryComponent(i < 0 ? kv : kv.slice(0, i)) !== name;
    });
  return kept.length === 0 ? path.slice(0, q) : `${path.slice(0, q)}?${kept.join('&')}`;
}

export type ApiKeyOutcome = 'ok' | 'anonymous' | 'missing' | 'invalid';

export function apiKeyLayer(cfg: ApiKeyConfig, keys: readonly NamedKey[], counter: (o: ApiKeyOutcome) => Counter): Layer {
  const challenge = `ApiKey realm="sidecar", header="${cfg.header}"`;
  const deny = (outcome: 'missing' | 'invalid', cause: string): ProxyError => {
    counter(outcome).inc();
    return new ProxyError('UAN', `api_key: ${cause}`, { headers: ['www-authenticate', challenge] });
  };
  return (next) => async (req) => {
    if (cfg.name_header !== undefined) req.headers.remove(cfg.name_header);
    let presented = req.headers.get(cfg.header)?.trim();
    const q = cfg.query === undefined ? -1 : req.path.indexOf('?');
    if (q >= 0) {
      // A key in the query is masked wherever the path is shown, also when the header's key is the one used.
      const inQuery = new URLSearchParams(req.path.slice(q + 1)).get(cfg.query!) ?? undefined;
      if (inQuery !== undefined) {
        const r = (req.context.redactQuery ??= []);
        if (!r.includes(cfg.query!)) r.push(cfg.query!);
      }
      if (presented === undefined || presented === '') presented = inQuery;
    }
    if (!cfg.forward_key) {
      req.headers.remove(cfg.header);
      if (q >= 0) req.path = withoutQueryParam(req.path, q, cfg.query!);
    }
    if (presented === undefined || presented === '') {
      if (cfg.optional) {
        counter('anonymous').inc();
        return next(req);
      }
      req.body?.resume();
      throw deny('missing', 'API key missing');
    }
    const name = matchKey(keys, presented);
    if (name === undefined) {
      req.body?.resume();
      throw deny('invalid', 'API key not recognised');
    }
    req.context.apiKeyName = name;
    if (cfg.name_header !== undefined) req.headers.set(cfg.name_header, name);
    counter('ok').inc();
    return next(req);
  };
}

/** The registered filter (`type: api_key`). */
export const apiKeyFilter: FilterFactory<ApiKeyConfig> = {
  type: 'api_key',
  create: (cfg, deps) =>
    apiKeyLayer(cfg, loadKeys(cfg), (outcome) => deps.metrics.authnOutcomes.get({ listener: deps.listener, route: deps.route, filter: 'api_key', outcome })),
};
