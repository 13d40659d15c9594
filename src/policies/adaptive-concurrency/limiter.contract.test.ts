// Contract shared by every ConcurrencyLimiter: admission never exceeds the limit, bounds hold, releases balance.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AimdLimiter } from './aimd.js';
import { GradientLimiter } from './gradient.js';
import type { ConcurrencyLimiter, LimiterOutcome } from './limiter.js';
import { mulberry32 } from '../testing.js';

const FACTORIES: ReadonlyArray<[string, () => ConcurrencyLimiter]> = [
  ['aimd', () => new AimdLimiter({ initialLimit: 10, minLimit: 2, maxLimit: 64, latencyThresholdMs: 50 })],
  ['gradient', () => new GradientLimiter({ initialLimit: 10, minLimit: 2, maxLimit: 64 })],
];

for (const [name, make] of FACTORIES) {
  describe(`contract: ${name}`, () => {
    it('never admits past the limit, keeps the limit an integer in bounds, and balances inflight', () => {
      const rnd = mulberry32(name.length * 7919);
      const l = make();
      let held = 0;
      for (let step = 0; step < 10_000; step++) {
        if (rnd() < 0.55) {
          const before = l.inflight;
          const ok = l.tryAcquire();
          assert.equal(ok, before < l.limit);
          if (ok) held++;
        } else if (held > 0) {
          const r = rnd();
          const outcome: LimiterOutcome = r < 0.05 ? 'dropped' : r < 0.1 ? 'ignore' : 'success';
          l.release(5 + 100 * rnd() * rnd(), outcome);
          held--;
        }
        assert.equal(l.inflight, held);
        assert.ok(Number.isInteger(l.limit) && l.limit >= 2 && l.limit <= 64, `limit=${l.limit}`);
      }
    });

    it('ignores a release without an acquire', () => {
      const l = make();
      const before = l.limit;
      l.release(1, 'dropped');
      assert.equal(l.inflight, 0);
      assert.equal(l.limit, before);
    });
  });
}
