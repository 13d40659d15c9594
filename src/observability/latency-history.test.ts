import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatencyHistory } from './latency-history.js';

/** A clock the test moves by hand. */
const fakeClock = (start = 0): { now(): number; t: number } => {
  const c = { t: start, now: () => c.t };
  return c;
};

/** Deterministic pseudo-random (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const exact = (sorted: number[], q: number): number => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;

describe('latency history', () => {
  it('quantiles are within the stated relative error of the exact ones (log-normal latencies)', () => {
    const clock = fakeClock(10 * 60_000);
    const h = new LatencyHistory(clock);
    const r = rng(7);
    const values: number[] = [];
    for (let i = 0; i < 50_000; i++) {
      // log-normal around 20 ms with a long tail
      const z = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
      const v = 20 * Math.exp(0.8 * z);
      values.push(v);
      h.record('in', 'api', 'backend', '10.0.0.1:80', v);
    }
    values.sort((a, b) => a - b);
    const w = h.window('route', 'in/api');
    assert.equal(w.count, 50_000);
    for (const [q, got] of [[0.5, w.p50], [0.9, w.p90], [0.99, w.p99], [0.999, w.p999]] as const) {
      const want = exact(values, q);
      assert.ok(Math.abs(got! - want) / want <= 0.02 + 1e-9, `p${q * 100}: got ${got}, exact ${want}`);
    }
    assert.deepEqual(h.names('endpoint'), ['backend/10.0.0.1:80']);
    assert.deepEqual(h.names('cluster'), ['backend']);
  });

  it('keeps 15 minutes: older minutes fall out of the window and their slots are reused', () => {
    const clock = fakeClock(0);
    const h = new LatencyHistory(clock);
    for (let m = 0; m < 20; m++) {
      clock.t = m * 60_000 + 1000;
      for (let i = 0; i < 10; i++) h.record('in', 'r', 'c', 'e', m + 1);
    }
    // now in minute 19: minutes 5..19 are kept, values 6..20 ms
    const w = h.window('listener', 'in');
    assert.equal(w.count, 150);
    assert.ok(w.p50! >= 12 * 0.98 && w.p50! <= 14 * 1.02, `p50 ${w.p50}`);
    const last5 = h.window('listener', 'in', 5);
    assert.equal(last5.count, 50);
    const points = h.perMinute('listener', 'in');
    assert.equal(points.length, 15);
    assert.equal(points[0]!.minute, 5);
    assert.equal(points[14]!.count, 10);
    // a quiet stretch: after 15 idle minutes nothing is left in the window
    clock.t += 15 * 60_000;
    assert.equal(h.window('listener', 'in').count, 0);
    assert.ok(h.perMinute('listener', 'in').every((p) => p.count === 0 && p.p99 === undefined));
  });

  it('memory is bounded: series are capped and slots reused', () => {
    const clock = fakeClock(0);
    const h = new LatencyHistory(clock, { maxSeries: 8 });
    for (let i = 0; i < 100; i++) h.record('in', `r${i}`, 'c', `e${i}`, 5);
    assert.equal(h.names('listener').length + h.names('route').length + h.names('cluster').length + h.names('endpoint').length, 8);
    assert.ok(h.dropped > 0);
    const perSlot = h.bytes / 8;
    for (let m = 0; m < 40; m++) {
      clock.t = m * 60_000;
      h.record('in', 'r0', 'c', 'e0', 5);
    }
    assert.ok(h.bytes <= 8 * 15 * perSlot, `${h.bytes} bytes`);
  });
});
