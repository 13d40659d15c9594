// Route actions that need no upstream (redirect, direct response) and the request rewrites applied before forwarding.
import type { RouteConfig } from '../config/schema.js';
import { HeaderList } from '../core/headers.js';
import type { HttpService, Layer, ProxyResponse } from '../core/service.js';
import { stripPort } from './matchers.js';

export function directResponseService(cfg: NonNullable<RouteConfig['direct_response']>): HttpService {
  const body = Buffer.from(cfg.body);
  const base: string[] = [];
  for (const [k, v] of Object.entries(cfg.headers)) base.push(k, v);
  if (!cfg.headers['content-type'] && body.length) base.push('content-type', 'text/plain; charset=utf-8');
  // RFC 9110 §8.6: no Content-Length on 1xx and 204 (and 304 describes another response).
  const bodyless = cfg.status < 200 || cfg.status === 204 || cfg.status === 304;
  if (!bodyless) base.push('content-length', String(body.length));
  return (req) => {
    req.body?.resume(); // drain what the client sends; the answer does not depend on it
    const res: ProxyResponse = { status: cfg.status, headers: new HeaderList(base.slice()), body: body.length && !bodyless ? body : null };
    return Promise.resolve(res);
  };
}

export function redirectService(cfg: NonNullable<RouteConfig['redirect']>, matchPrefix: string | undefined): HttpService {
  return (req) => {
    req.body?.resume();
    const scheme = cfg.scheme ?? req.scheme;
    const host = cfg.host ?? stripPort(req.authority);
    const defaultPort = scheme === 'https' ? 443 : 80;
    const originalPort = portOf(req.authority);
    const port = cfg.port ?? (cfg.scheme !== undefined || cfg.host !== undefined ? undefined : originalPort);
    let path = req.path;
    if (cfg.path !== undefined) path = cfg.path;
    else if (cfg.prefix_rewrite !== undefined && matchPrefix !== undefined) path = cfg.prefix_rewrite + req.path.slice(matchPrefix.length);
    const location = `${scheme}://${host}${port !== undefined && port !== defaultPort ? `:${port}` : ''}${path}`;
    const res: ProxyResponse = { status: cfg.status, headers: new HeaderList(['location', location, 'content-length', '0']), body: null };
    return Promise.resolve(res);
  };
}

function portOf(authority: string): number | undefined {
  const m = /:(\d+)$/.exec(authority);
  return m ? Number(m[1]) : undefined;
}

/** prefix_rewrite and host_rewrite. */
export function rewriteLayer(prefix: string | undefined, prefixRewrite: string | undefined, hostRewrite: string | undefined): Layer {
  if (prefixRewrite === undefined && hostRewrite === undefined) return (next) => next;
  const cut = prefix?.length ?? 0;
  return (next) => (req) => {
    if (prefixRewrite !== undefined) {
      const rest = req.path.slice(cut);
      // Avoid "//x" when both the rewrite ends and the rest starts with a slash.
      req.path = prefixRewrite.endsWith('/') && rest.startsWith('/') ? prefixRewrite + rest.slice(1) : prefixRewrite + rest;
      if (!req.path.startsWith('/')) req.path = `/${req.path}`;
    }
    if (hostRewrite !== undefined) req.authority = hostRewrite;
    return next(req);
  };
}

/** Picks one of several services by weight (canary / A-B split); records the chosen cluster. */
export function weightedService(choices: ReadonlyArray<{ name: string; weight: number; service: HttpService }>, random: () => number = Math.random): HttpService {
  const total = choices.reduce((s, c) => s + c.weight, 0);
  return (req) => {
    let r = random() * total;
    let chosen = choices[choices.length - 1]!;
    for (const c of choices) {
      if (c.weight === 0) continue;
      if (r < c.weight) {
        chosen = c;
        break;
      }
      r -= c.weight;
    }
    req.context.cluster = chosen.name;
    return chosen.service(req);
  };
}
