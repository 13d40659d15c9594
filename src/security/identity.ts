// SPIFFE workload identities: reading one from a certificate's subjectAltName and matching it against patterns.

/** The SPIFFE ID (`spiffe://trust-domain/path`) among a certificate's URI SANs, as Node prints them; undefined if none. */
export function spiffeIdOf(subjectAltName: string | undefined): string | undefined {
  if (!subjectAltName) return undefined;
  // Node prints "DNS:a, URI:spiffe://td/ns/x, IP Address:1.2.3.4"; a quoted form appears when a value holds a comma.
  for (const part of subjectAltName.split(/,\s*/)) {
    if (!part.startsWith('URI:')) continue;
    let uri = part.slice(4);
    if (uri.startsWith('"')) uri = uri.slice(1, uri.endsWith('"') ? -1 : undefined);
    if (isSpiffeId(uri)) return uri;
  }
  return undefined;
}

/** A well-formed SPIFFE ID: lower-case trust domain, path segments of [A-Za-z0-9.-_], no query, fragment or empty segment. */
export function isSpiffeId(id: string): boolean {
  const m = /^spiffe:\/\/([a-z0-9._-]+)(\/.*)?$/.exec(id);
  if (!m) return false;
  const path = m[2];
  if (path === undefined) return true;
  return path.split('/').slice(1).every((seg) => seg !== '' && seg !== '.' && seg !== '..' && /^[A-Za-z0-9._-]+$/.test(seg));
}

/**
 * A pattern is a SPIFFE ID whose path segments may be `*` (any one segment), or end in `/**` (any rest, at least one
 * segment); a trust domain of `*` is not allowed, as matching any trust domain would trust every CA's workloads alike.
 */
export function isIdentityPattern(p: string): boolean {
  const m = /^(spiffe:\/\/[^/]*)(.*)$/.exec(p);
  if (!m) return false;
  const path = m[2]!.replace(/\/\*\*$/, '/x').replace(/\/\*(?=\/|$)/g, '/x');
  return isSpiffeId(m[1]! + path);
}

export function matchesIdentity(id: string, pattern: string): boolean {
  if (pattern === id) return true;
  const ps = pattern.split('/');
  const is = id.split('/');
  // ["spiffe:", "", "trust-domain", ...segments]
  for (let i = 0; i < ps.length; i++) {
    const p = ps[i]!;
    if (p === '**' && i === ps.length - 1) return is.length > i;
    if (i >= is.length) return false;
    if (p === '*' && i >= 3) continue;
    if (p !== is[i]) return false;
  }
  return is.length === ps.length;
}

export const matchesAny = (id: string, patterns: readonly string[]): boolean => patterns.some((p) => matchesIdentity(id, p));
