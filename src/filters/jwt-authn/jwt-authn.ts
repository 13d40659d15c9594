// jwt_authn: verifies a JWT from the request against the providers' JWKS (jose), forwards chosen claims as headers,
// and answers 401 with an RFC 6750 challenge when the token is missing or invalid. The token is never logged.
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { ProxyError } from '../../core/errors.js';
import type { HeaderList } from '../../core/headers.js';
import type { Layer, ProxyRequest } from '../../core/service.js';
import type { Counter } from '../../observability/metrics.js';
import type { FilterFactory } from '../filter.js';
import { joseIfLoaded, loadJose, sharedJwksCache, type JwksCache } from './jwks.js';
import type { JwtAuthnConfig, JwtProviderConfig, TokenSource } from './schema.js';

interface Provider {
  readonly cfg: JwtProviderConfig;
  readonly jwks: JwksCache;
  /** Tokens this provider verified recently (see VERIFIED_TTL_S). */
  readonly verified: Map<string, Verified>;
}

/**
 * A signature check (ES256, RS256) costs tens to hundreds of microseconds, and a client sends the same token on
 * every request, so a verified token is remembered: until its exp (plus the allowed skew), at most VERIFIED_TTL_S,
 * and only while the JWKS is the very key set it was verified against (any refresh or rotation forgets it).
 */
interface Verified {
  readonly payload: JWTPayload;
  readonly untilS: number;
  readonly keys: JWTVerifyGetKey;
}
const VERIFIED_TTL_S = 60;
const VERIFIED_MAX = 4096;

export type AuthnOutcome = 'ok' | 'anonymous' | 'missing' | 'invalid';

/** The value of a dotted claim path (`realm_access.roles`), or undefined. */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  let v: unknown = claims;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

function queryValue(path: string, name: string): string | undefined {
  const q = path.indexOf('?');
  if (q < 0) return undefined;
  try {
    return new URLSearchParams(path.slice(q + 1)).get(name) ?? undefined;
  } catch {
    return undefined;
  }
}

const markRedacted = (req: ProxyRequest, name: string): void => {
  const r = (req.context.redactQuery ??= []);
  if (!r.includes(name)) r.push(name);
};

/** The token from the first source that has one, and how to strip it from the request. */
export function extractToken(req: ProxyRequest, from: readonly TokenSource[]): { token: string; strip: () => void } | undefined {
  // Every configured query source the path carries is a credential, read or not (a bearer header may win first): its
  // value is masked wherever the path is shown.
  if (req.path.includes('?')) for (const s of from) if ('query' in s && queryValue(req.path, s.query) !== undefined) markRedacted(req, s.query);
  for (const s of from) {
    if ('bearer' in s) {
      const a = req.headers.get('authorization');
      const m = a === undefined ? null : /^Bearer +([^\s]+)\s*$/i.exec(a);
      if (m) return { token: m[1]!, strip: () => req.headers.remove('authorization') };
    } else if ('header' in s) {
      const v = req.headers.get(s.header);
      const prefix = s.prefix ?? '';
      if (v !== undefined && v.startsWith(prefix) && v.length > prefix.length) return { token: v.slice(prefix.length).trim(), strip: () => req.headers.remove(s.header) };
    } else if ('cookie' in s) {
      const v = cookieValue(req.headers.get('cookie'), s.cookie);
      if (v) return { token: v, strip: () => {} };
    } else {
      const v = queryValue(req.path, s.query);
      if (v) return { token: v, strip: () => {} };
    }
  }
  return undefined;
}

/** Plain words for why jose refused a token (never the token itself). */
function describe(e: unknown, joseErrors: Awaited<ReturnType<typeof loadJose>>['errors']): string {
  if (e instanceof joseErrors.JWTExpired) return 'token expired';
  if (e instanceof joseErrors.JWTClaimValidationFailed) {
    if (e.claim === 'nbf') return 'token not yet valid (nbf)';
    if (e.claim === 'aud') return 'token audience not accepted';
    if (e.claim === 'iss') return 'token issuer not accepted';
    return `token claim ${e.claim} invalid: ${e.reason}`;
  }
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return 'token signature invalid';
  if (e instanceof joseErrors.JWKSNoMatchingKey) return 'no JWKS key matches the token (kid/alg)';
  if (e instanceof joseErrors.JWKSMultipleMatchingKeys) return 'several JWKS keys match the token';
  if (e instanceof joseErrors.JOSEError) return `token invalid (${e.code})`;
  return 'token invalid';
}

const quote = (s: string): string => s.replace(/["\\\r\n]/g, ' ');

export class JwtAuthn {
  readonly #providers: Provider[];
  readonly #cfg: JwtAuthnConfig;
  readonly #forwarded: string[];
  readonly #counter: (o: AuthnOutcome) => Counter;

  constructor(cfg: JwtAuthnConfig, counter: (o: AuthnOutcome) => Counter, jwks?: (p: JwtProviderConfig) => JwksCache) {
    this.#cfg = cfg;
    this.#counter = counter;
    this.#providers = cfg.providers.map((p) => ({
      cfg: p,
      jwks: jwks?.(p) ?? sharedJwksCache(p.jwks),
      verified: new Map<string, Verified>(),
    }));
    this.#forwarded = [...new Set(cfg.providers.flatMap((p) => Object.values(p.forward_claims)))];
  }

  #deny(realm: string, cause: string, missing: boolean): ProxyError {
    this.#counter(missing ? 'missing' : 'invalid').inc();
    const challenge = missing ? `Bearer realm="${realm}"` : `Bearer realm="${realm}", error="invalid_token", error_description="${quote(cause)}"`;
    return new ProxyError('UAN', `jwt_authn: ${cause}`, { headers: ['www-authenticate', challenge] });
  }

  /** Verifies the request's token (if any); sets ctx.jwtClaims and the forwarded headers, or throws a 401. */
  async check(req: ProxyRequest): Promise<void> {
    const { decodeJwt, decodeProtectedHeader, errors: joseErrors, jwtVerify } = joseIfLoaded() ?? (await loadJose());
    const h: HeaderList = req.headers;
    for (const name of this.#forwarded) h.remove(name);
    const realm = this.#cfg.realm;
    let found: { token: string; strip: () => void; provider: Provider } | undefined;
    for (const p of this.#providers) {
      const t = extractToken(req, p.cfg.from);
      if (t === undefined) continue;
      // A token this provider verified against the key set it still holds: no decoding, no signature check.
      const hit = p.verified.get(t.token);
      if (hit !== undefined && hit.keys === p.jwks.peek() && Date.now() / 1000 < hit.untilS) {
        this.#admit(req, p.cfg, hit.payload, t.strip);
        return;
      }
      let iss: string | undefined;
      try {
        iss = decodeJwt(t.token).iss;
      } catch {
        throw this.#deny(realm, 'token malformed', false);
      }
      if (iss === p.cfg.issuer) {
        found = { ...t, provider: p };
        break;
      }
      found ??= { ...t, provider: p };
    }
    if (found === undefined) {
      if (this.#cfg.optional) {
        this.#counter('anonymous').inc();
        return;
      }
      throw this.#deny(realm, 'token missing', true);
    }
    const { cfg, jwks } = found.provider;
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(found.token).kid;
    } catch {
      throw this.#deny(realm, 'token malformed', false);
    }
    const resolve = await jwks.resolver(kid);
    if (resolve === undefined) throw this.#deny(realm, `JWKS of provider ${cfg.name} unavailable: ${jwks.lastError ?? 'not fetched'}`, false);
    const skewS = Math.round(cfg.clock_skew / 1000);
    const nowS = Date.now() / 1000;
    const verified = found.provider.verified;
    const hit = verified.get(found.token);
    let payload: JWTPayload;
    if (hit !== undefined && hit.keys === resolve && nowS < hit.untilS) {
      payload = hit.payload;
    } else {
      if (hit !== undefined) verified.delete(found.token);
      try {
        ({ payload } = await jwtVerify(found.token, resolve, {
          issuer: cfg.issuer,
          ...(cfg.audiences !== undefined ? { audience: cfg.audiences } : {}),
          algorithms: [...cfg.algorithms],
          clockTolerance: skewS,
        }));
      } catch (e) {
        throw this.#deny(realm, `${describe(e, joseErrors)} (provider ${cfg.name})`, false);
      }
      if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
      const untilS = Math.min(nowS + VERIFIED_TTL_S, typeof payload.exp === 'number' ? payload.exp + skewS : Infinity);
      verified.set(found.token, { payload, untilS, keys: resolve });
    }
    this.#admit(req, cfg, payload, found.strip);
  }

  /** The token is good: its claims become the request's, forwarded as configured. */
  #admit(req: ProxyRequest, cfg: JwtProviderConfig, payload: JWTPayload, strip: () => void): void {
    const h: HeaderList = req.headers;
    req.context.jwtClaims = payload;
    for (const [claim, header] of Object.entries(cfg.forward_claims)) {
      const v = claimAt(payload, claim);
      if (v === undefined) continue;
      const text = typeof v === 'string' ? v : Array.isArray(v) && v.every((x) => typeof x === 'string') ? v.join(' ') : JSON.stringify(v);
      h.set(header, text.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?'));
    }
    if (!cfg.forward_token) strip();
    this.#counter('ok').inc();
  }
}

export function jwtAuthnLayer(authn: JwtAuthn): Layer {
  return (next) => async (req) => {
    await authn.check(req);
    return next(req);
  };
}

/** The registered filter (`type: jwt_authn`). */
export const jwtAuthnFilter: FilterFactory<JwtAuthnConfig> = {
  type: 'jwt_authn',
  create: (cfg, deps) =>
    jwtAuthnLayer(new JwtAuthn(cfg, (outcome) => deps.metrics.authnOutcomes.get({ listener: deps.listener, route: deps.route, filter: 'jwt_authn', outcome }))),
};
