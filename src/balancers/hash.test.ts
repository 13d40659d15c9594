// hashKey: FNV-1a reference vectors, UTF-8 equivalence with TextEncoder, avalanche and spread.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fmix32, fnv1a32, hashKey } from './hash.js';

/** Reference FNV-1a over TextEncoder bytes, to check the inline UTF-8 encoding. */
function fnvReference(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

function popcount(x: number): number {
  let c = 0;
  for (let v = x >>> 0; v !== 0; v &= v - 1) c++;
  return c;
}

describe('hashKey', () => {
  it('FNV-1a core matches published 32-bit test vectors', () => {
    assert.equal(fnv1a32(''), 0x811c9dc5);
    assert.equal(fnv1a32('a'), 0xe40c292c);
    assert.equal(fnv1a32('foobar'), 0xbf9cf968);
    assert.equal(hashKey('a'), fmix32(0xe40c292c));
  });

  it('hashes the UTF-8 encoding, including astral characters and lone surrogates', () => {
    for (const s of ['é', '€', '😀', 'a\ud800b', '\udc00', 'x\ud83d']) assert.equal(fnv1a32(s), fnvReference(s), JSON.stringify(s));
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 20 }).map((cs) => String.fromCharCode(...cs)),
        (s) => fnv1a32(s) === fnvReference(s),
      ),
      { numRuns: 500, seed: 7 },
    );
  });

  it('returns an unsigned 32-bit integer', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const h = hashKey(s);
        return Number.isInteger(h) && h >= 0 && h <= 0xffffffff;
      }),
      { numRuns: 300, seed: 8 },
    );
  });

  it('avalanches: a one-character change flips about half the output bits', () => {
    let flips = 0;
    const n = 5000;
    for (let i = 0; i < n; i++) flips += popcount(hashKey(`session-${i}`) ^ hashKey(`session-${i + 1}`));
    const mean = flips / n;
    assert.ok(Math.abs(mean - 16) < 0.5, `mean bit flips ${mean}`);
  });

  it('spreads similar keys evenly across the top bits (the ring orders by them)', () => {
    const buckets = new Array<number>(16).fill(0);
    const n = 64000;
    for (let i = 0; i < n; i++) buckets[hashKey(`10.0.0.${i % 256}:${8000 + (i >> 8)}`) >>> 28]!++;
    for (const b of buckets) assert.ok(Math.abs(b - n / 16) < (n / 16) * 0.05, `bucket ${b}`);
  });
});
