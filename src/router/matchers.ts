// Pure matchers compiled once from route config; matching never allocates beyond the query parse.
import { decodeQueryComponent } from '../core/query.js';
import type { RouteMatchConfig, ValueMatchConfig } from '../config/schema.js';
import type { HeaderList } from '../core/headers.js';

/** What a route match looks at: the parts of a request a router needs, nothing else. */
export interface MatchInput {
  readonly method: string;
  /** Host without port, lower-case. */
  readonly host: string;
  /** Path without the query. */
  readonly pathname: string;
  /** Raw query string without '?', or ''. */
  readonly query: string;
  readonly headers: HeaderList;
}

export type Matcher = (input: MatchInput) => boolean;

export function compileHostMatcher(patterns: readonly string[]): (host: string) => boolean {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  let any = false;
  for (const raw of patterns) {
    const p = stripPort(raw.toLowerCase());
    if (p === '*') any = true;
    else if (p.startsWith('*.')) suffixes.push(p.slice(1)); // ".example.com"
    else exact.add(p);
  }
  if (any) return () => true;
  return (host) => {
    if (exact.has(host)) return true;
    for (const s of suffixes) if (host.length > s.length && host.endsWith(s)) return true;
    return false;
  };
}

/** host[:port] or [v6]:port -> host, lower-case. */
export function stripPort(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end < 0 ? authority : authority.slice(0, end + 1);
  }
  const colon = authority.lastIndexOf(':');
  return colon < 0 ? authority : authority.slice(0, colon);
}

function compileValueMatch(m: ValueMatchConfig, get: (input: MatchInput, name: string) => string | undefined): Matcher {
  const name = m.name;
  let test: (v: string | undefined) => boolean;
  if (m.exact !== undefined) {
    const want = m.exact;
    test = (v) => v === want;
  } else if (m.regex !== undefined) {
    const re = new RegExp(`^(?:${m.regex})$`);
    test = (v) => v !== undefined && re.test(v);
  } else if (m.present === false) {
    test = (v) => v === undefined;
  } else {
    test = (v) => v !== undefined;
  }
  return m.invert ? (input) => !test(get(input, name)) : (input) => test(get(input, name));
}

const headerValue = (input: MatchInput, name: string): string | undefined => {
  const all = input.headers.getAll(name.toLowerCase());
  return all.length === 0 ? undefined : all.join(',');
};

export function queryValue(query: string, name: string): string | undefined {
  if (query === '') return undefined;
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    if (decodeQueryComponent(key) === name) return eq < 0 ? '' : decodeQueryComponent(part.slice(eq + 1));
  }
  return undefined;
}

/** Compiles a route's match block into one predicate (all conditions must hold). */
export function compileRouteMatch(m: RouteMatchConfig): Matcher {
  const checks: Matcher[] = [];
  if (m.hosts) {
    const host = compileHostMatcher(m.hosts);
    checks.push((i) => host(i.host));
  }
  if (m.exact !== undefined) {
    const p = m.exact;
    checks.push((i) => i.pathname === p);
  } else if (m.prefix !== undefined && m.prefix !== '/') {
    const p = m.prefix;
    checks.push((i) => i.pathname.startsWith(p));
  } else if (m.regex !== undefined) {
    const re = new RegExp(`^(?:${m.regex})$`);
    checks.push((i) => re.test(i.pathname));
  }
  if (m.methods) {
    const methods = new Set(m.methods);
    checks.push((i) => methods.has(i.method));
  }
  for (const h of m.headers ?? []) checks.push(compileValueMatch(h, headerValue));
  for (const q of m.query ?? []) checks.push(compileValueMatch(q, (i, n) => queryValue(i.query, n)));

  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0]!;
  return (i) => {
    for (const c of checks) if (!c(i)) return false;
    return true;
  };
}
