// The jwt_authn filter's config schema.
import { z } from 'zod';
import { duration, headerName } from '../../config/primitives.js';
import { defineSpec } from '../filter.js';

/** Asymmetric algorithms only: `none` and the HMAC family are not configurable, so no HMAC key is ever accepted. */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const tokenSource = z
  .union([
    z.strictObject({ bearer: z.literal(true) }).meta({ description: 'Authorization: Bearer <token>.' }),
    z.strictObject({ header: headerName, prefix: z.string().optional() }).meta({ description: 'A request header, with an optional prefix before the token.' }),
    z.strictObject({ cookie: z.string().min(1) }).meta({ description: 'A cookie.' }),
    z.strictObject({ query: z.string().min(1) }).meta({ description: 'A query parameter.' }),
  ]);

const jwks = z
  .strictObject({
    keys: z.array(z.record(z.string(), z.unknown())).optional().meta({ description: 'The JWKS keys inline.' }),
    file: z.string().min(1).optional().meta({ description: 'Path of a JWKS (JSON) file, read when the config is loaded.' }),
    uri: z.url({ protocol: /^https$/ }).optional().meta({ description: 'HTTPS URL of the JWKS.' }),
    ca_file: z.string().min(1).optional().meta({ description: 'PEM CA bundle that verifies the JWKS server (default: the system store).' }),
    refresh_interval: duration.default(300_000).meta({ description: 'A JWKS older than this is refreshed in the background (requests keep using the cached copy).' }),
    stale_if_error: duration.default(3_600_000).meta({ description: 'While refreshes fail, the cached JWKS is still used for this long past refresh_interval.' }),
    unknown_kid_refetch: duration.default(10_000).meta({ description: 'A token with an unknown kid triggers a refetch at most this often.' }),
    timeout: duration.default(5_000).meta({ description: 'Timeout of one JWKS fetch.' }),
  })
  .refine((j) => [j.keys, j.file, j.uri].filter((v) => v !== undefined).length === 1, { message: 'jwks needs exactly one of keys, file or uri' });

export const jwtProvider = z.strictObject({
  name: z.string().min(1),
  issuer: z.string().min(1).meta({ description: 'Required `iss` claim; also picks the provider for a token.' }),
  audiences: z.array(z.string().min(1)).optional().meta({ description: 'The `aud` claim must hold one of these (unchecked when absent).' }),
  jwks,
  algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1).default(['RS256', 'ES256', 'EdDSA']).meta({ description: 'Accepted `alg` values (asymmetric only).' }),
  clock_skew: duration.default(30_000).meta({ description: 'Leeway for exp and nbf.' }),
  from: z.array(tokenSource).min(1).default([{ bearer: true }]).meta({ description: 'Where the token is read from, first found wins.' }),
  forward_claims: z.record(z.string().min(1), headerName).default({}).meta({ description: 'Claim (dotted path) -> request header sent upstream; client-sent copies are removed first.' }),
  forward_token: z.boolean().default(true).meta({ description: 'false: remove the token from the request sent upstream.' }),
});

export const jwtAuthnConfig = z.strictObject({
  providers: z.array(jwtProvider).min(1),
  optional: z.boolean().default(false).meta({ description: 'Let requests without a token through (anonymous); a present token is still verified.' }),
  realm: z.string().regex(/^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/).default('sidecar').meta({ description: 'realm of the WWW-Authenticate challenge.' }),
});
export type JwtAuthnConfig = z.output<typeof jwtAuthnConfig>;
export type JwtProviderConfig = z.output<typeof jwtProvider>;
export type TokenSource = z.output<typeof tokenSource>;

export const jwtAuthnSpec = defineSpec({
  type: 'jwt_authn',
  description: 'Verify JWTs (JWKS from a file or HTTPS URL); 401 with WWW-Authenticate when missing or invalid.',
  schema: jwtAuthnConfig,
  defaults: { providers: [{ name: 'p', issuer: 'https://issuer.example', jwks: { keys: [] } }], optional: true },
});
