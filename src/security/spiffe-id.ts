// SPIFFE ID and trust-domain validation (SPIFFE spec, "SPIFFE-ID.md" §2): pure, used by the CLI's certificate authority.
export interface SpiffeId {
  readonly trustDomain: string;
  /** "" for a trust-domain ID, otherwise "/seg/seg...". */
  readonly path: string;
  readonly text: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
const SEGMENT_CHARS = /^[A-Za-z0-9._-]+$/;
/** The spec caps a SPIFFE ID (as a URI) at 2048 bytes; a trust domain at 255 characters. */
const MAX_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN = 255;

/** Why a trust domain name is not valid, or undefined when it is. */
export function trustDomainProblem(name: string): string | undefined {
  if (name === '') return 'the trust domain is empty';
  if (name.length > MAX_TRUST_DOMAIN) return `the trust domain is longer than ${MAX_TRUST_DOMAIN} characters`;
  if (/[A-Z]/.test(name)) return `the trust domain "${name}" has upper-case letters; trust domains are lower case`;
  if (name.includes(':')) return `the trust domain "${name}" has a ":" (a port or userinfo); a trust domain is a bare name such as example.org`;
  if (name.includes('@')) return `the trust domain "${name}" has an "@" (userinfo), which SPIFFE IDs may not carry`;
  if (!TRUST_DOMAIN_CHARS.test(name)) return `the trust domain "${name}" may only use a-z, 0-9, ".", "-" and "_"`;
  return undefined;
}

/**
 * Parses "spiffe://trust-domain/path". With `requirePath` (a workload identity) the trust-domain ID alone
 * ("spiffe://example.org") is refused.
 */
export function parseSpiffeId(text: string, requirePath = false): Parsed<SpiffeId> {
  const fail = (why: string): Parsed<SpiffeId> => ({ ok: false, error: `"${text}" is not a valid SPIFFE ID: ${why}` });
  if (Buffer.byteLength(text) > MAX_ID_BYTES) return fail(`longer than ${MAX_ID_BYTES} bytes`);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text);
  if (!scheme) return fail('it must start with spiffe://');
  if (scheme[1] !== 'spiffe') return fail(`the scheme must be "spiffe" (lower case), not "${scheme[1]}"`);
  const rest = text.slice(scheme[0].length);
  if (rest.includes('?')) return fail('a query ("?") is not allowed');
  if (rest.includes('#')) return fail('a fragment ("#") is not allowed');
  if (rest.includes('%')) return fail('percent-encoding is not allowed');
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  const tdProblem = trustDomainProblem(trustDomain);
  if (tdProblem) return fail(tdProblem);
  if (path !== '') {
    const segments = path.slice(1).split('/');
    for (const [i, segment] of segments.entries()) {
      if (segment === '') return fail(i === segments.length - 1 ? 'a trailing "/" is not allowed' : 'empty path segments ("//") are not allowed');
      if (segment === '.' || segment === '..') return fail(`"${segment}" path segments are not allowed`);
      if (!SEGMENT_CHARS.test(segment)) return fail(`the path segment "${segment}" may only use A-Z, a-z, 0-9, ".", "-" and "_"`);
    }
  }
  if (requirePath && path === '') return fail('a workload identity needs a path, e.g. spiffe://' + trustDomain + '/ns/default/sa/web');
  return { ok: true, value: { trustDomain, path, text } };
}

/** The SPIFFE ID among a certificate's URI SANs (Node's X509Certificate.subjectAltName text), if exactly one. */
export function spiffeIdFromSubjectAltName(subjectAltName: string | undefined): string | undefined {
  if (!subjectAltName) return undefined;
  const uris = subjectAltName
    .split(/,\s*/)
    .filter((s) => s.startsWith('URI:spiffe://'))
    .map((s) => s.slice('URI:'.length));
  return uris.length === 1 ? uris[0] : undefined;
}
