// Token buckets on a fake clock: burst, refill, Retry-After arithmetic, the LRU key bound, and in-flight counting.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InFlight, TokenBuckets } from './bucket.js';

describe('TokenBuckets', () => {
  it('a new key gets its burst, then one token per refill step', () => {
    const b = new TokenBuckets({ burst: 3, tokensPerFill: 1, fillIntervalMs: 1000, maxKeys: 10 });
    let t = 0;
    assert.deepEqual([1, 2, 3].map(() => b.take('a', t).allowed), [true, true, true]);
    const denied = b.take('a', t);
    assert.equal(denied.allowed, false);
    assert.equal(denied.remaining, 0);
    assert.equal(denied.retryAfterMs, 1000);
    assert.equal(denied.resetMs, 3000);
    t = 999;
    assert.equal(b.take('a', t).allowed, false);
    assert.ok(b.take('a', t).retryAfterMs <= 2);
    t = 1000;
    assert.equal(b.take('a', t).allowed, true);
    assert.equal(b.take('a', t).allowed, false);
  });

  it('refill is capped at the burst, however long a key was idle', () => {
    const b = new TokenBuckets({ burst: 2, tokensPerFill: 10, fillIntervalMs: 1000, maxKeys: 10 });
    b.take('a', 0);
    b.take('a', 0);
    const n = [0, 0, 0].map(() => b.take('a', 1_000_000).allowed).filter(Boolean).length;
    assert.equal(n, 2);
  });

  it('measured over time, the allowed rate is the refill rate plus the burst', () => {
    const b = new TokenBuckets({ burst: 5, tokensPerFill: 10, fillIntervalMs: 1000, maxKeys: 10 });
    let allowed = 0;
    for (let t = 0; t < 10_000; t += 10) if (b.take('k', t).allowed) allowed++; // 100 req/s offered for 10 s
    assert.ok(allowed >= 100 && allowed <= 105, `allowed ${allowed}`);
  });

  it('keys are independent; a clock going backwards never adds tokens', () => {
    const b = new TokenBuckets({ burst: 1, tokensPerFill: 1, fillIntervalMs: 1000, maxKeys: 10 });
    assert.equal(b.take('a', 5000).allowed, true);
    assert.equal(b.take('b', 5000).allowed, true);
    assert.equal(b.take('a', 1000).allowed, false);
  });

  it('the key table is bounded: the least recently used key is forgotten first', () => {
    const b = new TokenBuckets({ burst: 1, tokensPerFill: 1, fillIntervalMs: 60_000, maxKeys: 3 });
    for (const k of ['a', 'b', 'c']) b.take(k, 0);
    b.take('a', 1); // a is now the most recently used (denied, still tracked)
    for (let i = 0; i < 10_000; i++) b.take(`flood-${i}`, 2);
    assert.equal(b.size, 3);
    assert.ok(b.evictions >= 10_000);
    const c = new TokenBuckets({ burst: 1, tokensPerFill: 1, fillIntervalMs: 60_000, maxKeys: 3 });
    for (const k of ['a', 'b', 'c']) c.take(k, 0);
    c.take('a', 1);
    c.take('d', 2); // evicts b, the least recently used
    assert.equal(c.take('a', 3).allowed, false, 'a kept its empty bucket');
    assert.equal(c.take('b', 3).allowed, true, 'b was forgotten and starts full');
  });
});

describe('InFlight', () => {
  it('at most max per key, released slots are reusable, idle keys hold no entry', () => {
    const f = new InFlight(2);
    assert.equal(f.acquire('a'), true);
    assert.equal(f.acquire('a'), true);
    assert.equal(f.acquire('a'), false);
    assert.equal(f.acquire('b'), true);
    f.release('a');
    assert.equal(f.acquire('a'), true);
    f.release('a');
    f.release('a');
    f.release('b');
    assert.equal(f.size, 0);
  });
});
