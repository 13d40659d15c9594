// The admin bearer token: read from a file or an environment variable (on start and every reload), kept only as a
// SHA-256 digest, and checked in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readSecretFile } from '../config/secret-file.js';

export interface AdminTokenSource {
  readonly token_file?: string | undefined;
  readonly token_env?: string | undefined;
}

/** What the admin server compares against: the digest of the configured token. */
export type TokenDigest = Buffer;

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * The configured token's digest, undefined when no token is configured; throws an Error saying what is wrong (a
 * missing or empty file, an unset variable), so a start fails and a reload keeps the old config.
 */
export function loadAdminToken(admin: AdminTokenSource, env: NodeJS.ProcessEnv = process.env): TokenDigest | undefined {
  let token: string;
  if (admin.token_file !== undefined) {
    const read = readSecretFile(admin.token_file);
    if (!read.ok) throw new Error(`admin.token_file: ${read.problem}`);
    token = read.text;
  } else if (admin.token_env !== undefined) {
    const value = env[admin.token_env];
    if (value === undefined || value.trim() === '') throw new Error(`admin.token_env: the environment variable ${admin.token_env} is ${value === undefined ? 'not set' : 'empty'}`);
    token = value;
  } else {
    return undefined;
  }
  return digest(token);
}

export type TokenCheck = 'ok' | 'missing' | 'invalid';

/** Checks an Authorization header value against the digest: equal-length digests, compared in constant time. */
export function checkBearer(authorization: string | undefined, expected: TokenDigest): TokenCheck {
  const m = authorization === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
  if (!m) return 'missing';
  return timingSafeEqual(digest(m[1]!), expected) ? 'ok' : 'invalid';
}
