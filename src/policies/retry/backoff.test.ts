// backoffDelay bounds and growth, and Retry-After parsing for delta-seconds and all three HTTP-date forms.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backoffCeiling, backoffDelay, parseHttpDate, parseRetryAfter } from './backoff.js';
import { mulberry32 } from '../testing.js';

describe('backoffDelay', () => {
  it('is random() times min(max, base * 2^(attempt-1))', () => {
    const half = (): number => 0.5;
    assert.equal(backoffDelay(1, 25, 250, half), 12.5);
    assert.equal(backoffDelay(2, 25, 250, half), 25);
    assert.equal(backoffDelay(3, 25, 250, half), 50);
    assert.equal(backoffDelay(4, 25, 250, half), 100);
    assert.equal(backoffDelay(5, 25, 250, half), 125); // capped at 250
    assert.equal(backoffDelay(50, 25, 250, half), 125);
  });

  it('stays in [0, ceiling) for every attempt with a seeded source', () => {
    const rnd = mulberry32(7);
    for (let attempt = 1; attempt <= 40; attempt++) {
      const ceiling = backoffCeiling(attempt, 25, 250);
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(attempt, 25, 250, rnd);
        assert.ok(d >= 0 && d < ceiling, `attempt ${attempt}: ${d} not in [0, ${ceiling})`);
      }
    }
  });

  it('spreads delays over the whole interval (full jitter, not equal jitter)', () => {
    const rnd = mulberry32(11);
    const delays = Array.from({ length: 2000 }, () => backoffDelay(3, 100, 10_000, rnd));
    const below = delays.filter((d) => d < 200).length; // ceiling 400: about half fall under 200
    assert.ok(below > 850 && below < 1150, `below=${below}`);
    assert.ok(Math.min(...delays) < 5);
  });

  it('handles degenerate inputs without NaN', () => {
    assert.equal(backoffDelay(1e9, 25, 250, () => 0.999), 0.999 * 250);
    assert.equal(backoffDelay(0, 25, 250, () => 0.5), 12.5); // attempt < 1 treated as the first retry
    assert.equal(backoffDelay(3, 0, 250, () => 0.5), 0);
    assert.equal(backoffDelay(3, 25, 0, () => 0.5), 0);
    assert.ok(backoffDelay(1, 25, 250, () => 1) < 25); // out-of-range random is clamped below the ceiling
    assert.equal(backoffDelay(1, 25, 250, () => Number.NaN), 0);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2024, 0, 15, 12, 0, 0);

  it('parses delta-seconds', () => {
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter('  0 ', now), 0);
    assert.equal(parseRetryAfter('-5', now), 0);
  });

  it('parses IMF-fixdate, RFC 850 and asctime relative to now', () => {
    assert.equal(parseRetryAfter('Mon, 15 Jan 2024 12:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Monday, 15-Jan-24 12:01:00 GMT', now), 60_000);
    assert.equal(parseRetryAfter('Mon Jan 15 12:00:05 2024', now), 5_000);
    assert.equal(parseRetryAfter('Mon Jan  1 00:00:00 2024', now), 0); // past: clamp
    assert.equal(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', now), 0);
  });

  it('rejects malformed values', () => {
    for (const v of ['', '1.5', 'soon', '12abc', 'Mon, 15 Jan 2024 12:00:30 PST', 'Mon, 30 Feb 2024 12:00:00 GMT', 'Mon, 15 Foo 2024 12:00:00 GMT', 'Mon, 15 Jan 2024 25:00:00 GMT']) {
      assert.equal(parseRetryAfter(v, now), undefined, v);
    }
  });

  it('maps two-digit RFC 850 years to at most 50 years ahead', () => {
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', now), Date.UTC(1994, 10, 6, 8, 49, 37));
    assert.equal(parseHttpDate('Friday, 01-Jan-49 00:00:00 GMT', now), Date.UTC(2049, 0, 1));
    assert.equal(parseHttpDate('Friday, 01-Jan-75 00:00:00 GMT', now), Date.UTC(1975, 0, 1));
  });
});
