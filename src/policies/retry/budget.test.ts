// RetryBudget: the ratio-plus-floor bound holds over every trailing ttl window, and the budget refills after it.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RetryBudget } from './budget.js';
import { FakeClock, mulberry32 } from '../testing.js';

/**
 * Times are recorded so the bound can be checked against exact trailing windows, not the budget's own buckets.
 * Both lists are non-decreasing, so two sliding pointers per list count each window in linear time.
 */
function assertWithinBudget(deposits: number[], retries: number[], ratio: number, minPerSec: number, ttlMs: number): void {
  const reserve = (minPerSec * ttlMs) / 1000;
  let rLo = 0; // first retry >= t - ttl
  let rHi = 0; // first retry > t
  let dLo = 0; // first deposit > t - ttl
  let dHi = 0; // first deposit > t
  for (const t of retries) {
    while (retries[rLo]! < t - ttlMs) rLo++;
    while (rHi < retries.length && retries[rHi]! <= t) rHi++;
    while (dLo < deposits.length && deposits[dLo]! <= t - ttlMs) dLo++;
    while (dHi < deposits.length && deposits[dHi]! <= t) dHi++;
    const withdrawn = rHi - rLo;
    const earned = dHi - dLo;
    assert.ok(withdrawn <= ratio * earned + reserve + 1e-9, `at t=${t}: ${withdrawn} retries > ${ratio} * ${earned} + ${reserve}`);
  }
}

describe('RetryBudget', () => {
  it('starts with the minRetriesPerSecond * ttl reserve', () => {
    const b = new RetryBudget({ retryRatio: 0.2, minRetriesPerSecond: 10, ttlMs: 10_000 }, new FakeClock());
    assert.equal(b.balance(), 100);
  });

  it('earns retryRatio of a retry per deposit', () => {
    const b = new RetryBudget({ retryRatio: 0.2, minRetriesPerSecond: 0, ttlMs: 10_000 }, new FakeClock());
    for (let i = 0; i < 4; i++) b.deposit();
    assert.equal(b.balance(), 0); // 0.8 of a retry is not a retry
    b.deposit();
    assert.equal(b.balance(), 1);
    assert.equal(b.tryWithdraw(), true);
    assert.equal(b.tryWithdraw(), false);
    assert.equal(b.exhaustedTotal, 1);
    assert.equal(b.withdrawnTotal, 1);
  });

  it('does not round 0.2 * 3 + 0.4 below a whole retry', () => {
    const b = new RetryBudget({ retryRatio: 0.2, minRetriesPerSecond: 0.04, ttlMs: 10_000 }, new FakeClock());
    for (let i = 0; i < 3; i++) b.deposit();
    assert.equal(b.tryWithdraw(), true);
  });

  it('never exceeds ratio * requests + min * ttl over any trailing window when every request fails and retries', () => {
    for (const [seed, ratio, minPerSec, ttlMs, bucketMs] of [
      [1, 0.2, 10, 10_000, 1000],
      [2, 0.5, 1, 3_000, 1000],
      [3, 0.1, 0, 5_000, 1000],
      [4, 0.2, 10, 1_500, 1000], // ttl not a multiple of the bucket
    ] as const) {
      const clock = new FakeClock(123); // not bucket-aligned
      const rnd = mulberry32(seed);
      const budget = new RetryBudget({ retryRatio: ratio, minRetriesPerSecond: minPerSec, ttlMs, bucketMs }, clock);
      const deposits: number[] = [];
      const retries: number[] = [];
      for (let step = 0; step < 4000; step++) {
        // Bursty arrivals: mostly 1-10 ms apart, sometimes a quiet second.
        clock.advance(rnd() < 0.01 ? 1000 : 1 + Math.floor(rnd() * 10));
        budget.deposit();
        deposits.push(clock.now());
        // 100% failure: try up to 3 retries per request until the budget says no.
        for (let r = 0; r < 3 && budget.tryWithdraw(); r++) retries.push(clock.now());
      }
      assert.ok(retries.length > 0);
      assertWithinBudget(deposits, retries, ratio, minPerSec, ttlMs);
    }
  });

  it('the window checker itself catches a violation (so the property test is not vacuous)', () => {
    assert.throws(() => assertWithinBudget([0], [0, 1, 2], 0.2, 1, 1000), /retries/);
    assertWithinBudget([0, 0, 0, 0, 0], [1, 2], 0.2, 1, 1000);
  });

  it('grants about ratio * rate + min per second in steady state', () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ retryRatio: 0.2, minRetriesPerSecond: 10, ttlMs: 10_000 }, clock);
    let retries = 0;
    for (let ms = 0; ms < 60_000; ms += 10) {
      clock.advance(10); // 1000 req/s, each retried as often as allowed
      for (let k = 0; k < 10; k++) {
        budget.deposit();
        while (budget.tryWithdraw()) retries++;
      }
    }
    const perSecond = retries / 60;
    assert.ok(perSecond <= 210 + 100 / 60 + 1e-9 && perSecond > 170, `perSecond=${perSecond}`);
  });

  it('recovers to the full reserve once the window has passed', () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ retryRatio: 0.2, minRetriesPerSecond: 10, ttlMs: 10_000 }, clock);
    for (let i = 0; i < 50; i++) budget.deposit();
    while (budget.tryWithdraw());
    assert.equal(budget.balance(), 0);
    clock.advance(5_000);
    assert.equal(budget.balance(), 0); // still inside the window
    clock.advance(6_000); // ttl + one bucket after the withdrawals
    assert.equal(budget.balance(), 100);
    assert.equal(budget.tryWithdraw(), true);
  });

  it('keeps memory bounded: stale buckets are reused, not accumulated', () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ retryRatio: 1, minRetriesPerSecond: 0, ttlMs: 2_000 }, clock);
    for (let s = 0; s < 1000; s++) {
      budget.deposit();
      clock.advance(1000);
    }
    assert.equal(budget.balance(), 1); // only the deposit one second ago is still inside the 2 s window
  });

  it('rejects nonsensical configuration', () => {
    const clock = new FakeClock();
    assert.throws(() => new RetryBudget({ retryRatio: -1 }, clock), RangeError);
    assert.throws(() => new RetryBudget({ ttlMs: 0 }, clock), RangeError);
    assert.throws(() => new RetryBudget({ minRetriesPerSecond: Number.NaN }, clock), RangeError);
  });
});
