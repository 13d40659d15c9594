// Certificate lifetimes: TTL parsing, the "not beyond the CA" check and validity in plain words, with a fixed clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeValidity, formatTtl, parseTtl, ttlProblem } from './cert-ttl.js';

const H = 3_600_000;
const D = 24 * H;
const NOW = Date.parse('2026-01-01T00:00:00Z');

describe('parseTtl', () => {
  it('takes the config units and days', () => {
    assert.equal(parseTtl('24h'), 24 * H);
    assert.equal(parseTtl('90m'), 90 * 60_000);
    assert.equal(parseTtl('30s'), 30_000);
    assert.equal(parseTtl('365d'), 365 * D);
    assert.equal(parseTtl('1.5d'), 36 * H);
  });
  it('refuses zero, negatives, bare numbers and unknown units', () => {
    for (const bad of ['0h', '0d', '-1h', '24', '1y', '', 'h']) assert.equal(parseTtl(bad), undefined, bad);
  });
  it('formats as a person would say it', () => {
    assert.equal(formatTtl(24 * H), '24h');
    assert.equal(formatTtl(365 * D), '365d');
    assert.equal(formatTtl(90 * 60_000), '90m');
  });
});

describe('ttlProblem', () => {
  const caFrom = NOW - D;
  const caTo = NOW + 10 * D;
  it('allows a TTL within the CA validity, refuses one beyond it', () => {
    assert.equal(ttlProblem(24 * H, NOW, caFrom, caTo), undefined);
    assert.equal(ttlProblem(10 * D, NOW, caFrom, caTo), undefined, 'exactly to the end');
    assert.match(ttlProblem(11 * D, NOW, caFrom, caTo)!, /--ttl 11d is longer than the CA's remaining validity \(10d, until 2026-01-11T00:00:00\.000Z\)/);
  });
  it('an expired or not yet valid CA issues nothing', () => {
    assert.match(ttlProblem(H, caTo + 1, caFrom, caTo)!, /CA certificate expired at 2026-01-11/);
    assert.match(ttlProblem(H, caFrom - 1, caFrom, caTo)!, /not valid yet/);
  });
});

describe('describeValidity', () => {
  it('says valid now / expired / not yet valid with a span', () => {
    assert.deepEqual(describeValidity(NOW, NOW - H, NOW + D + 2 * H + 5000), { valid: true, words: 'valid now, expires in 1d 2h' });
    assert.deepEqual(describeValidity(NOW, NOW - 2 * D, NOW - 3 * 60_000), { valid: false, words: 'expired 3m ago' });
    assert.deepEqual(describeValidity(NOW, NOW + 90_000, NOW + D), { valid: false, words: 'not valid yet: valid in 1m 30s' });
  });
});
