// GradientLimiter: growth at steady latency, shrink as latency rises, app-limited hold, drops, bounds, recovery.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GradientLimiter } from './gradient.js';
import { mulberry32 } from '../testing.js';

/** One round: fill to the limit (or demand), then complete everything with latencyMs. */
function round(l: GradientLimiter, latencyMs: number, demand = Infinity): number {
  let n = 0;
  while (n < demand && l.tryAcquire()) n++;
  for (let k = 0; k < n; k++) l.release(latencyMs, 'success');
  return n;
}

describe('GradientLimiter', () => {
  it('averages the first samples plainly, then exponentially', () => {
    const l = new GradientLimiter({ initialLimit: 100, warmupWindow: 4, longWindow: 9 });
    for (const v of [10, 20, 30, 40]) {
      l.tryAcquire();
      l.release(v, 'success');
    }
    assert.equal(l.longRttMs, 25);
    l.tryAcquire();
    l.release(75, 'success'); // factor 2 / (9 + 1) = 0.2
    assert.equal(l.longRttMs, 35);
  });

  it('grows by about smoothing * queueSize per sample while latency is steady and the limit is used', () => {
    const l = new GradientLimiter({ initialLimit: 20, maxLimit: 1000 });
    round(l, 10);
    // +0.8 per sample until inflight (counting down as the round drains) falls below half the limit: 8 samples.
    assert.equal(l.limit, 26);
    for (let i = 0; i < 30; i++) round(l, 10);
    assert.equal(l.limit, 1000);
  });

  it('holds the limit while app-limited', () => {
    const l = new GradientLimiter({ initialLimit: 50 });
    for (let i = 0; i < 50; i++) round(l, 10, 10);
    assert.equal(l.limit, 50);
  });

  it('shrinks when latency rises well above the long-term average, and recovers when it falls back', () => {
    const l = new GradientLimiter({ initialLimit: 100, maxLimit: 100 });
    for (let i = 0; i < 5; i++) round(l, 10);
    assert.equal(l.limit, 100);
    round(l, 40); // 4x slower: gradient hits its 0.5 floor
    const shrunk = l.limit;
    assert.ok(shrunk < 30, `limit=${shrunk}`);
    for (let i = 0; i < 60; i++) round(l, 10);
    assert.equal(l.limit, 100);
  });

  it('treats a drop as the strongest back-off signal, even while app-limited', () => {
    const l = new GradientLimiter({ initialLimit: 100 });
    l.tryAcquire();
    l.release(0, 'dropped');
    assert.equal(l.limit, Math.floor(100 * 0.8 + (100 * 0.5 + 4) * 0.2));
  });

  it('stays within [minLimit, maxLimit] under noisy overload', () => {
    const rnd = mulberry32(3);
    const l = new GradientLimiter({ initialLimit: 20, minLimit: 5, maxLimit: 300 });
    for (let r = 0; r < 300; r++) {
      const n = round(l, 10 * (1 + 5 * rnd()));
      assert.ok(l.limit >= 5 && l.limit <= 300 && n <= 300);
      if (rnd() < 0.1) {
        l.tryAcquire();
        l.release(0, 'dropped');
      }
    }
  });

  it('adopts a sustained latency level as the new baseline after about longWindow samples', () => {
    // Gradient2 reacts to change relative to its long average, not to absolute latency. longWindow counts
    // samples, so at high request rates callers should feed it sampled or windowed RTTs.
    const l = new GradientLimiter({ initialLimit: 50, maxLimit: 50, longWindow: 100 });
    for (let i = 0; i < 3; i++) round(l, 10);
    round(l, 40);
    assert.ok(l.limit < 30, `limit=${l.limit}`);
    for (let i = 0; i < 100; i++) round(l, 40);
    assert.ok(Math.abs(l.longRttMs - 40) / 40 < 0.05, `longRtt=${l.longRttMs}`);
    assert.equal(l.limit, 50);
  });

  it('ignores ignore outcomes and unusable latencies, and unmatched releases', () => {
    const l = new GradientLimiter({ initialLimit: 10 });
    l.tryAcquire();
    l.release(5, 'ignore');
    l.tryAcquire();
    l.release(Number.NaN, 'success');
    l.release(5, 'success'); // unmatched
    assert.equal(l.limit, 10);
    assert.equal(l.longRttMs, 0);
    assert.equal(l.inflight, 0);
  });

  it('accepts queueSize as a function of the limit', () => {
    const l = new GradientLimiter({ initialLimit: 100, maxLimit: 1000, queueSize: (lim) => Math.max(4, Math.log10(lim)) });
    round(l, 10);
    assert.ok(l.limit > 100);
  });

  it('validates configuration', () => {
    assert.throws(() => new GradientLimiter({ smoothing: 0 }), RangeError);
    assert.throws(() => new GradientLimiter({ rttTolerance: 0.9 }), RangeError);
    assert.throws(() => new GradientLimiter({ minLimit: 0 }), RangeError);
  });
});
