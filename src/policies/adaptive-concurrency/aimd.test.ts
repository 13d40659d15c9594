// AimdLimiter: additive increase under utilization, multiplicative decrease once per window, bounds, convergence.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AimdLimiter } from './aimd.js';
import { mulberry32 } from '../testing.js';

function fill(l: AimdLimiter, n = Infinity): number {
  let k = 0;
  while (k < n && l.tryAcquire()) k++;
  return k;
}

describe('AimdLimiter', () => {
  it('admits up to the limit', () => {
    const l = new AimdLimiter({ initialLimit: 5 });
    assert.equal(fill(l), 5);
    assert.equal(l.tryAcquire(), false);
    assert.equal(l.inflight, 5);
  });

  it('adds 1 per fast success while at least half the limit is in use', () => {
    const l = new AimdLimiter({ initialLimit: 10, latencyThresholdMs: 100 });
    fill(l, 10);
    l.release(20, 'success'); // inflight 10 -> +1
    assert.equal(l.limit, 11);
    for (let i = 0; i < 3; i++) l.release(20, 'success'); // inflight 9, 8, 7 at sample time: limit 12, 13, 14
    assert.equal(l.limit, 14);
    l.release(20, 'success'); // inflight 6, 6 * 2 < 14: app-limited, no growth
    assert.equal(l.limit, 14);
  });

  it('grows on every success when the utilization check is off (the plain textbook rule)', () => {
    const l = new AimdLimiter({ initialLimit: 10, requireUtilization: false });
    for (let i = 0; i < 5; i++) {
      l.tryAcquire();
      l.release(1, 'success');
    }
    assert.equal(l.limit, 15);
  });

  it('multiplies by backoffRatio on a drop or a sample over the latency threshold', () => {
    const l = new AimdLimiter({ initialLimit: 100, latencyThresholdMs: 100 });
    l.tryAcquire();
    l.release(5, 'dropped');
    assert.equal(l.limit, 90);
    l.tryAcquire();
    l.release(101, 'success');
    assert.equal(l.limit, 81);
    l.tryAcquire();
    l.release(100, 'success'); // at the threshold is fine, but app-limited: unchanged
    assert.equal(l.limit, 81);
  });

  it('backs off once for a burst of slow responses that were in flight together', () => {
    const l = new AimdLimiter({ initialLimit: 50, latencyThresholdMs: 100 });
    fill(l, 50);
    for (let i = 0; i < 50; i++) l.release(500, 'success');
    assert.equal(l.limit, 45);
    fill(l, 45); // the next window is new evidence
    l.release(500, 'dropped');
    assert.equal(l.limit, 40);
  });

  it('collapses per sample when once-per-window is disabled (Netflix behaviour), never below minLimit', () => {
    const l = new AimdLimiter({ initialLimit: 50, minLimit: 3, backoffOncePerWindow: false });
    fill(l, 50);
    for (let i = 0; i < 50; i++) l.release(0, 'dropped');
    assert.equal(l.limit, 3);
  });

  it('ignores ignore outcomes, NaN latencies and unmatched releases', () => {
    const l = new AimdLimiter({ initialLimit: 4 });
    fill(l);
    l.release(1e9, 'ignore');
    l.release(Number.NaN, 'success');
    assert.equal(l.limit, 4);
    assert.equal(l.inflight, 2);
    l.release(1, 'ignore');
    l.release(1, 'ignore');
    l.release(1, 'ignore'); // unmatched
    assert.equal(l.inflight, 0);
    assert.equal(l.limit, 4);
  });

  it('caps at maxLimit', () => {
    const l = new AimdLimiter({ initialLimit: 8, maxLimit: 10, requireUtilization: false });
    for (let i = 0; i < 20; i++) {
      l.tryAcquire();
      l.release(1, 'success');
    }
    assert.equal(l.limit, 10);
  });

  it('settles around an upstream whose latency grows past its capacity', () => {
    // Upstream: 10 ms up to 40 concurrent requests, then latency grows linearly; threshold at 1.5x base.
    const rnd = mulberry32(9);
    const l = new AimdLimiter({ initialLimit: 5, latencyThresholdMs: 15, maxLimit: 1000 });
    const capacity = 40;
    const limits: number[] = [];
    for (let round = 0; round < 300; round++) {
      const n = fill(l, 500);
      for (let k = 0; k < n; k++) l.release(10 * Math.max(1, n / capacity) * (0.95 + 0.1 * rnd()), 'success');
      if (round >= 100) limits.push(l.limit);
    }
    const lo = Math.min(...limits);
    const hi = Math.max(...limits);
    assert.ok(lo >= capacity && hi <= 3 * capacity, `limit ranged ${lo}..${hi}`);
  });

  it('validates configuration', () => {
    assert.throws(() => new AimdLimiter({ minLimit: 0 }), RangeError);
    assert.throws(() => new AimdLimiter({ minLimit: 10, maxLimit: 5 }), RangeError);
    assert.throws(() => new AimdLimiter({ backoffRatio: 1 }), RangeError);
    assert.equal(new AimdLimiter({ initialLimit: 1000, maxLimit: 50 }).limit, 50);
  });
});
