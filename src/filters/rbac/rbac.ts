// rbac: allow and deny rules over what the request carries (mTLS peer identity, JWT claims, API-key name, client
// address, host, path, method, headers). A matching deny rule wins; otherwise an allow rule must match. Denied:
// 403 with flag RBAC naming the rule. Dry-run mode logs and counts what would be denied and lets it through.
import { ProxyError } from '../../core/errors.js';
import type { Layer, ProxyRequest } from '../../core/service.js';
import type { Counter } from '../../observability/metrics.js';
import { matchesIdentity } from '../../security/identity.js';
import type { FilterFactory } from '../filter.js';
import { claimAt } from '../jwt-authn/jwt-authn.js';
import { inCidr, parseCidr, parseIp, unmapIp } from './ip.js';
import type { RbacConfig, RbacRule } from './schema.js';

type Test = (req: ProxyRequest, client: string) => boolean;

export interface RbacDecision {
  readonly allowed: boolean;
  /** The deny rule that matched, or undefined when no allow rule matched (or it was allowed). */
  readonly rule: string | undefined;
  readonly reason: string;
}

const stripPort = (authority: string): string => {
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']')).toLowerCase();
  const i = authority.lastIndexOf(':');
  return (i >= 0 ? authority.slice(0, i) : authority).toLowerCase();
};

const unmap = unmapIp;

/** The client address: the connection's, or with n trusted hops the n-th X-Forwarded-For entry from the right. */
export function clientAddress(req: ProxyRequest, trustedHops: number): string {
  const peer = unmap(req.context.downstreamAddress);
  if (trustedHops === 0) return peer;
  const xff = req.headers.get('x-forwarded-for');
  if (xff === undefined) return peer;
  const entries = xff.split(',').map((s) => s.trim()).filter((s) => s !== '');
  // The sidecar appended the connection's address already: skip it when it is the last entry.
  if (entries.length > 0 && unmap(entries[entries.length - 1]!) === peer) entries.pop();
  const e = entries[entries.length - trustedHops];
  return e !== undefined && parseIp(e) !== undefined ? unmap(e) : peer;
}

function claimTest(c: NonNullable<RbacRule['claims']>[number]): Test {
  return (req) => {
    const claims = req.context.jwtClaims;
    const v = claims === undefined ? undefined : claimAt(claims, c.claim);
    if (c.present !== undefined) return (v !== undefined) === c.present;
    if (v === undefined) return false;
    if (c.equals !== undefined) return v === c.equals;
    const want = c.contains!;
    if (Array.isArray(v)) return v.includes(want);
    return typeof v === 'string' && v.split(' ').includes(want);
  };
}

function compileRule(r: RbacRule): Test {
  const tests: Test[] = [];
  if (r.peers) {
    const peers = r.peers;
    tests.push((req) => req.context.peerIdentity !== undefined && peers.some((p) => matchesIdentity(req.context.peerIdentity!, p)));
  }
  if (r.claims) tests.push(...r.claims.map(claimTest));
  if (r.api_keys) {
    const keys = new Set(r.api_keys);
    tests.push((req) => req.context.apiKeyName !== undefined && keys.has(req.context.apiKeyName));
  }
  if (r.source_ips) {
    const list = r.source_ips.map((c) => parseCidr(c)!);
    tests.push((_req, client) => {
      const ip = parseIp(client);
      return ip !== undefined && list.some((c) => inCidr(ip, c));
    });
  }
  if (r.hosts) {
    const hosts = r.hosts.map((h) => h.toLowerCase());
    tests.push((req) => {
      const host = stripPort(req.authority);
      return hosts.some((h) => (h.startsWith('*.') ? host.endsWith(h.slice(1)) && host.length > h.length - 1 : host === h));
    });
  }
  if (r.paths) {
    const ms = r.paths.map((p) => {
      if (p.exact !== undefined) return (s: string) => s === p.exact;
      if (p.prefix !== undefined) return (s: string) => s.startsWith(p.prefix!);
      const re = new RegExp(`^(?:${p.regex!})$`);
      return (s: string) => re.test(s);
    });
    tests.push((req) => {
      const q = req.path.indexOf('?');
      const path = q < 0 ? req.path : req.path.slice(0, q);
      return ms.some((m) => m(path));
    });
  }
  if (r.methods) {
    const methods = new Set(r.methods.map((m) => m.toUpperCase()));
    tests.push((req) => methods.has(req.method.toUpperCase()));
  }
  if (r.headers) {
    for (const h of r.headers) {
      const re = h.regex !== undefined ? new RegExp(`^(?:${h.regex})$`) : undefined;
      tests.push((req) => {
        const v = req.headers.get(h.name);
        if (h.present !== undefined) return (v !== undefined) === h.present;
        if (v === undefined) return false;
        return re !== undefined ? re.test(v) : v === h.exact;
      });
    }
  }
  if (r.authenticated !== undefined) {
    const want = r.authenticated;
    tests.push((req) => (req.context.jwtClaims !== undefined || req.context.apiKeyName !== undefined || req.context.peerIdentity !== undefined) === want);
  }
  return (req, client) => tests.every((t) => t(req, client));
}

/** The compiled policy: pure, decided per request without I/O. */
export class RbacPolicy {
  readonly #deny: Array<{ name: string; test: Test }>;
  readonly #allow: Array<{ name: string; test: Test }>;
  readonly #hops: number;

  constructor(cfg: RbacConfig) {
    const rules = cfg.rules.map((r) => ({ name: r.name, action: r.action, test: compileRule(r) }));
    this.#deny = rules.filter((r) => r.action === 'deny');
    this.#allow = rules.filter((r) => r.action === 'allow');
    this.#hops = cfg.trusted_hops;
  }

  decide(req: ProxyRequest): RbacDecision {
    const client = clientAddress(req, this.#hops);
    for (const r of this.#deny) if (r.test(req, client)) return { allowed: false, rule: r.name, reason: `denied by rule ${r.name}` };
    for (const r of this.#allow) if (r.test(req, client)) return { allowed: true, rule: r.name, reason: `allowed by rule ${r.name}` };
    return { allowed: false, rule: undefined, reason: 'no allow rule matched (default deny)' };
  }
}

export interface RbacCounters {
  readonly allow: Counter;
  readonly deny: Counter;
  readonly dryRunDeny: Counter;
}

export function rbacLayer(cfg: RbacConfig, counters: RbacCounters): Layer {
  const policy = new RbacPolicy(cfg);
  return (next) => (req) => {
    const d = policy.decide(req);
    if (d.allowed) {
      counters.allow.inc();
      return next(req);
    }
    const who = req.context.peerIdentity ?? req.context.apiKeyName ?? (typeof req.context.jwtClaims?.sub === 'string' ? req.context.jwtClaims.sub : 'anonymous');
    if (cfg.dry_run) {
      counters.dryRunDeny.inc();
      // The access log's error field says what would have happened (a later failure's cause replaces it).
      req.context.error = `rbac dry run: would deny: ${d.reason} (principal ${who})`;
      return next(req);
    }
    counters.deny.inc();
    req.body?.resume();
    return Promise.reject(new ProxyError('RBAC', `rbac: ${d.reason} (principal ${who})`));
  };
}

/** The registered filter (`type: rbac`). */
export const rbacFilter: FilterFactory<RbacConfig> = {
  type: 'rbac',
  create: (cfg, deps) => {
    const c = (decision: string): Counter => deps.metrics.rbacDecisions.get({ listener: deps.listener, route: deps.route, decision });
    return rbacLayer(cfg, { allow: c('allow'), deny: c('deny'), dryRunDeny: c('dry_run_deny') });
  },
};
