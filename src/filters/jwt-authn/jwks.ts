// A provider's JWKS: from inline keys, a file or an HTTPS URL; cached, refreshed in the background once older than
// the refresh interval, refetched on an unknown kid (rate-limited), and kept while refreshes fail for stale_if_error.
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import { systemClock, type Clock } from '../../core/clock.js';
import type { JwtProviderConfig } from './schema.js';

export type JwksFetch = () => Promise<JSONWebKeySet>;

type Jose = typeof import('jose');
let josePromise: Promise<Jose> | undefined;
/** jose is loaded on first use, so processes whose config verifies no JWT never load it (process footprint). */
export const loadJose = (): Promise<Jose> => (josePromise ??= import('jose').then((m) => (loadedJose = m)));
let loadedJose: Jose | undefined;
/** jose once loaded (no promise hop per request), else undefined. */
export const joseIfLoaded = (): Jose | undefined => loadedJose;

interface Cached {
  readonly resolve: JWTVerifyGetKey;
  readonly kids: ReadonlySet<string>;
  readonly fetchedAt: number;
}

/** Drops symmetric keys: an HMAC secret in a JWKS must never verify a token (the algorithm-confusion attack). */
export function asymmetricOnly(set: JSONWebKeySet): JSONWebKeySet {
  return { keys: set.keys.filter((k) => k.kty === 'RSA' || k.kty === 'EC' || k.kty === 'OKP') };
}

function parseJwks(text: string): JSONWebKeySet {
  const v = JSON.parse(text) as unknown;
  if (typeof v !== 'object' || v === null || !Array.isArray((v as { keys?: unknown }).keys)) throw new Error('not a JWKS (no "keys" array)');
  return v as JSONWebKeySet;
}

/** GET an HTTPS JWKS with a timeout and a size bound. */
export function httpsFetch(uri: string, caFile: string | undefined, timeoutMs: number): JwksFetch {
  const ca = caFile === undefined ? undefined : readFileSync(caFile);
  return () =>
    new Promise<JSONWebKeySet>((resolve, reject) => {
      const req = request(uri, { method: 'GET', ca, timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`JWKS fetch answered ${res.statusCode ?? 0}`));
          return;
        }
        const chunks: Buffer[] = [];
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (n > 1 << 20) res.destroy(new Error('JWKS over 1 MiB'));
          else chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          try {
            resolve(parseJwks(Buffer.concat(chunks).toString('utf8')));
          } catch (e) {
            reject(e as Error);
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error(`JWKS fetch timed out after ${timeoutMs}ms`)));
      req.on('error', reject);
      req.end();
    });
}

export function jwksFetchOf(cfg: JwtProviderConfig['jwks']): JwksFetch {
  if (cfg.keys !== undefined) {
    const set = { keys: cfg.keys } as unknown as JSONWebKeySet;
    return () => Promise.resolve(set);
  }
  if (cfg.file !== undefined) {
    const file = cfg.file;
    return async () => parseJwks(await readFile(file, 'utf8'));
  }
  return httpsFetch(cfg.uri!, cfg.ca_file, cfg.timeout);
}

export interface JwksTimes {
  readonly refreshInterval: number;
  readonly staleIfError: number;
  readonly unknownKidRefetch: number;
}

export class JwksCache {
  #cached: Cached | undefined;
  #inflight: Promise<void> | undefined;
  #lastAttempt = -Infinity;
  #lastError: string | undefined;
  readonly #fetch: JwksFetch;
  readonly #t: JwksTimes;
  readonly #clock: Clock;

  constructor(fetch: JwksFetch, times: JwksTimes, clock: Clock = systemClock) {
    this.#fetch = fetch;
    this.#t = times;
    this.#clock = clock;
  }

  /** Starts a fetch when nothing is cached yet (at config load, so the first request finds the keys). */
  warm(): void {
    if (this.#cached === undefined && this.#inflight === undefined) void this.#refresh();
  }

  /** Why the last fetch failed, if it did. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  #refresh(): Promise<void> {
    if (this.#inflight) return this.#inflight;
    this.#lastAttempt = this.#clock.now();
    this.#inflight = Promise.all([this.#fetch(), loadJose()])
      .then(([set, { createLocalJWKSet }]) => {
        const clean = asymmetricOnly(set);
        this.#cached = {
          resolve: createLocalJWKSet(clean),
          kids: new Set(clean.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string')),
          fetchedAt: this.#clock.now(),
        };
        this.#lastError = undefined;
      })
      .catch((e: unknown) => {
        this.#lastError = (e as Error)?.message ?? String(e);
      })
      .finally(() => {
        this.#inflight = undefined;
      });
    return this.#inflight;
  }

  /** The current key set while it is fresh (no refresh due), without starting anything: the verified-token fast path. */
  peek(): JWTVerifyGetKey | undefined {
    const c = this.#cached;
    return c !== undefined && this.#clock.now() - c.fetchedAt <= this.#t.refreshInterval ? c.resolve : undefined;
  }

  /**
   * The key resolver for a token with this kid. A fresh or stale-but-usable cache answers at once (an old one also
   * starts a background refresh); an unknown kid waits for one refetch (at most every unknown_kid_refetch); an empty
   * or expired cache waits for a fetch.
   */
  async resolver(kid: string | undefined): Promise<JWTVerifyGetKey | undefined> {
    const now = this.#clock.now();
    let c = this.#cached;
    if (c !== undefined && now - c.fetchedAt > this.#t.refreshInterval + this.#t.staleIfError) c = this.#cached = undefined;
    if (c === undefined) {
      await this.#refresh();
      return this.#cached?.resolve;
    }
    if (kid !== undefined && !c.kids.has(kid) && now - this.#lastAttempt >= this.#t.unknownKidRefetch) {
      // A fetch already in flight may have started before the key was published: wait for it, then fetch anew.
      if (this.#inflight) await this.#inflight;
      if (this.#cached?.kids.has(kid) === true) return this.#cached.resolve;
      await this.#refresh();
      return this.#cached?.resolve;
    }
    if (now - c.fetchedAt > this.#t.refreshInterval) void this.#refresh();
    return c.resolve;
  }
}

/**
 * One cache per distinct JWKS config, shared across config snapshots: a reload keeps the warm keys instead of making
 * the next requests wait for a fetch. Held weakly, so caches no snapshot uses any more are collected.
 */
const shared = new Map<string, WeakRef<JwksCache>>();

export function sharedJwksCache(cfg: JwtProviderConfig['jwks']): JwksCache {
  const key = JSON.stringify(cfg);
  const hit = shared.get(key)?.deref();
  if (hit !== undefined) return hit;
  for (const [k, ref] of shared) if (ref.deref() === undefined) shared.delete(k);
  const cache = new JwksCache(jwksFetchOf(cfg), { refreshInterval: cfg.refresh_interval, staleIfError: cfg.stale_if_error, unknownKidRefetch: cfg.unknown_kid_refetch });
  shared.set(key, new WeakRef(cache));
  cache.warm();
  return cache;
}
