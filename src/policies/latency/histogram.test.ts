// LatencyHistogram accuracy (<= 2% vs exact nearest-rank quantiles), range edges, merge; WindowedHistogram expiry.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyHistogram, WindowedHistogram } from './histogram.js';
import { FakeClock, mulberry32 } from '../testing.js';

function exactQuantile(sorted: readonly number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

const QS = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999];

describe('LatencyHistogram', () => {
  it('is compact: a few hundred buckets for 10us..60s at 2%', () => {
    const h = new LatencyHistogram();
    assert.ok(h.layout.slots < 400, `slots=${h.layout.slots}`);
  });

  it('is empty until something is recorded', () => {
    const h = new LatencyHistogram();
    assert.equal(h.count, 0);
    assert.equal(h.quantile(0.5), undefined);
    assert.equal(h.mean(), undefined);
    assert.equal(h.min, undefined);
  });

  it('reports a single value exactly', () => {
    const h = new LatencyHistogram();
    h.record(12.345);
    for (const q of [0, 0.5, 0.99, 1]) assert.equal(h.quantile(q), 12.345);
  });

  for (const [name, sample] of [
    ['log-uniform 10us..60s', (r: () => number) => 0.01 * Math.exp(r() * Math.log(6e6))],
    ['exponential, mean 20 ms', (r: () => number) => -20 * Math.log(1 - r())],
    ['bimodal 2 ms / 800 ms', (r: () => number) => (r() < 0.9 ? 2 : 800) * (0.8 + 0.4 * r())],
  ] as const) {
    it(`stays within 2% relative error of exact quantiles: ${name}`, () => {
      const rnd = mulberry32(name.length);
      const h = new LatencyHistogram();
      const values: number[] = [];
      for (let i = 0; i < 10_000; i++) {
        const v = sample(rnd);
        values.push(v);
        h.record(v);
      }
      values.sort((a, b) => a - b);
      for (const q of QS) {
        const exact = exactQuantile(values, q);
        const est = h.quantile(q)!;
        assert.ok(Math.abs(est - exact) / exact <= 0.02 + 1e-12, `q=${q}: ${est} vs ${exact}`);
      }
      assert.equal(h.quantile(0), values[0]);
      assert.equal(h.quantile(1), values.at(-1));
      assert.ok(Math.abs(h.mean()! - values.reduce((a, b) => a + b, 0) / values.length) < 1e-6 * h.mean()!);
    });
  }

  it('puts out-of-range values in under/overflow buckets reported by the exact extremes', () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 10; i++) h.record(0);
    for (let i = 0; i < 80; i++) h.record(5);
    for (let i = 0; i < 10; i++) h.record(120_000);
    assert.equal(h.quantile(0.05), 0);
    assert.ok(Math.abs(h.quantile(0.5)! - 5) / 5 <= 0.02);
    assert.equal(h.quantile(0.95), 120_000);
  });

  it('treats negatives as 0 and drops NaN', () => {
    const h = new LatencyHistogram();
    h.record(-3);
    h.record(Number.NaN);
    assert.equal(h.count, 1);
    assert.equal(h.max, 0);
  });

  it('resets and merges', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram({ relativeError: 0.02 }); // same geometry as the defaults
    for (let i = 1; i <= 100; i++) a.record(i);
    for (let i = 101; i <= 200; i++) b.record(i);
    a.merge(b);
    assert.equal(a.count, 200);
    assert.ok(Math.abs(a.quantile(0.5)! - 100) / 100 <= 0.02);
    assert.equal(a.max, 200);
    a.reset();
    assert.equal(a.count, 0);
    assert.equal(a.quantile(0.5), undefined);
    assert.throws(() => a.merge(new LatencyHistogram({ relativeError: 0.05 })));
  });

  it('rejects invalid options', () => {
    assert.throws(() => new LatencyHistogram({ minMs: 0 }), RangeError);
    assert.throws(() => new LatencyHistogram({ minMs: 10, maxMs: 5 }), RangeError);
    assert.throws(() => new LatencyHistogram({ relativeError: 1 }), RangeError);
  });
});

describe('WindowedHistogram', () => {
  it('answers from recent samples and forgets them after the window', () => {
    const clock = new FakeClock();
    const w = new WindowedHistogram(10_000, clock, { slices: 5 });
    assert.equal(w.quantile(0.95), undefined);
    for (let i = 0; i < 100; i++) w.record(10);
    assert.equal(w.count, 100);
    assert.equal(w.quantile(0.95), 10);
    clock.advance(9_999);
    assert.equal(w.count, 100);
    clock.advance(1);
    assert.equal(w.count, 0);
    assert.equal(w.quantile(0.95), undefined);
  });

  it('expires slice by slice, so live percentiles follow a latency shift', () => {
    const clock = new FakeClock();
    const w = new WindowedHistogram(10_000, clock, { slices: 5 });
    for (let t = 0; t < 10_000; t += 10) {
      w.record(10);
      clock.advance(10);
    }
    const before = w.quantile(0.95)!;
    assert.ok(Math.abs(before - 10) / 10 <= 0.02);
    const p50: number[] = [];
    let p95At1s = 0;
    for (let t = 0; t < 10_000; t += 10) {
      w.record(200);
      clock.advance(10);
      if (t === 990) p95At1s = w.quantile(0.95)!;
      if (t % 2000 === 1990) p50.push(w.quantile(0.5)!);
    }
    // A second of slow samples (over 5% of the window) already moves p95: what a hedging trigger wants.
    assert.ok(Math.abs(p95At1s - 200) / 200 <= 0.02, `p95 after 1s: ${p95At1s}`);
    // The median moves once slow samples are the majority, and old fast samples leave as their slices expire.
    assert.ok(Math.abs(p50[0]! - 10) / 10 <= 0.02, `p50 after 2s: ${p50[0]}`);
    assert.ok(Math.abs(p50.at(-1)! - 200) / 200 <= 0.02, `p50 after 10s: ${p50.at(-1)}`);
    assert.ok(p50.every((v, i) => i === 0 || v >= p50[i - 1]!));
  });

  it('survives long idle gaps and clock values that are not slice-aligned', () => {
    const clock = new FakeClock(1234.5);
    const w = new WindowedHistogram(1_000, clock);
    w.record(7);
    clock.advance(1e9);
    assert.equal(w.count, 0);
    w.record(3);
    assert.equal(w.quantile(0.5), 3);
    w.reset();
    assert.equal(w.count, 0);
  });

  it('rejects invalid windows', () => {
    const clock = new FakeClock();
    assert.throws(() => new WindowedHistogram(0, clock), RangeError);
    assert.throws(() => new WindowedHistogram(1000, clock, { slices: 0 }), RangeError);
  });
});
