// JwksCache with an injected clock: answers from the cache without waiting, refreshes in the background, refetches
// on an unknown kid (rate-limited), keeps a stale copy while fetches fail, then gives up after stale_if_error.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exportJWK, generateKeyPair, type JSONWebKeySet } from 'jose';
import type { Clock } from '../../core/clock.js';
import { asymmetricOnly, JwksCache, sharedJwksCache } from './jwks.js';
import { jwtProvider } from './schema.js';

class FakeClock implements Clock {
  t = 0;
  now = (): number => this.t;
  setTimeout(): () => void {
    return () => {};
  }
}

async function jwks(...kids: string[]): Promise<JSONWebKeySet> {
  const keys = [];
  for (const kid of kids) {
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    keys.push({ ...(await exportJWK(publicKey)), kid, alg: 'ES256' });
  }
  return { keys };
}

describe('JwksCache', () => {
  it('serves from the cache at once while a background refresh is pending, and keeps a stale copy on errors', async () => {
    const clock = new FakeClock();
    const set = await jwks('a');
    let calls = 0;
    let mode: 'ok' | 'hang' | 'fail' = 'ok';
    let release: () => void = () => {};
    const cache = new JwksCache(
      () => {
        calls++;
        if (mode === 'hang') return new Promise((r) => (release = () => r(set)));
        if (mode === 'fail') return Promise.reject(new Error('boom'));
        return Promise.resolve(set);
      },
      { refreshInterval: 1000, staleIfError: 5000, unknownKidRefetch: 500 },
      clock,
    );
    assert.ok(await cache.resolver('a'));
    assert.equal(calls, 1);
    clock.t = 1500;
    mode = 'hang';
    // Old: a refresh starts, but the cached copy answers without waiting for it.
    assert.ok(await cache.resolver('a'));
    assert.equal(calls, 2);
    assert.ok(await cache.resolver('a'));
    assert.equal(calls, 2, 'one refresh in flight at a time');
    release();
    await new Promise((r) => setImmediate(r));
    mode = 'fail';
    clock.t = 3000;
    assert.ok(await cache.resolver('a'), 'stale copy still used');
    await new Promise((r) => setImmediate(r));
    assert.equal(cache.lastError, 'boom');
    clock.t = 1500 + 1000 + 5000 + 1;
    assert.equal(await cache.resolver('a'), undefined, 'past stale_if_error the copy is dropped');
  });

  it('an unknown kid refetches, at most once per unknown_kid_refetch', async () => {
    const clock = new FakeClock();
    let set = await jwks('a');
    let calls = 0;
    const cache = new JwksCache(() => (calls++, Promise.resolve(set)), { refreshInterval: 60_000, staleIfError: 0, unknownKidRefetch: 500 }, clock);
    await cache.resolver('a');
    clock.t = 600;
    set = await jwks('a', 'b');
    await cache.resolver('b');
    assert.equal(calls, 2);
    await cache.resolver('zzz');
    assert.equal(calls, 2, 'rate-limited');
    clock.t = 1200;
    await cache.resolver('zzz');
    assert.equal(calls, 3);
  });

  it('drops symmetric keys from a JWKS', () => {
    const out = asymmetricOnly({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }, { kty: 'RSA', n: 'x', e: 'AQAB' }, { kty: 'OKP', crv: 'Ed25519', x: 'y' }] });
    assert.deepEqual(out.keys.map((k) => k.kty), ['RSA', 'OKP']);
  });
});

describe('sharedJwksCache', () => {
  it('one warm cache per distinct JWKS config, across config snapshots', async () => {
    const set = await jwks('a');
    const cfg = (keys: unknown[]) => jwtProvider.parse({ name: 'p', issuer: 'i', jwks: { keys } }).jwks;
    const one = sharedJwksCache(cfg(set.keys));
    assert.equal(sharedJwksCache(cfg(set.keys)), one, 'a reload with the same JWKS config reuses the cache');
    assert.notEqual(sharedJwksCache(cfg([])), one);
    assert.ok(await one.resolver('a'));
  });
});
