// OutlierDetector: consecutive-failure ejection, growing ejection time with decay, max_ejection_percent, events.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OutlierDetector, type OutlierConfig, type OutlierEvent, type OutlierOutcome } from './outlier.js';
import { FakeClock, mulberry32 } from '../testing.js';

function setup(n: number, config: OutlierConfig = {}): { clock: FakeClock; od: OutlierDetector; events: OutlierEvent[] } {
  const clock = new FakeClock();
  const od = new OutlierDetector(config, clock, n);
  const events: OutlierEvent[] = [];
  od.on((e) => events.push(e));
  return { clock, od, events };
}

function repeat(od: OutlierDetector, i: number, outcome: OutlierOutcome, times: number): void {
  for (let k = 0; k < times; k++) od.record(i, outcome);
}

describe('OutlierDetector', () => {
  it('ejects after 5 consecutive 5xx for base_ejection_time, then returns the endpoint', () => {
    const { clock, od, events } = setup(10);
    repeat(od, 3, '5xx', 4);
    assert.equal(od.isEjected(3), false);
    od.record(3, '5xx');
    assert.equal(od.isEjected(3), true);
    assert.equal(od.ejectedCount(), 1);
    assert.equal(od.ejectionsTotal, 1);
    assert.equal(od.ejectionsByReason('consecutive-5xx'), 1);
    assert.deepEqual(events, [{ type: 'eject', endpoint: 3, reason: 'consecutive-5xx', durationMs: 30_000, multiplier: 1, atMs: 0 }]);
    clock.advance(29_999);
    assert.equal(od.isEjected(3), true);
    clock.advance(1);
    assert.equal(od.isEjected(3), false);
    assert.deepEqual(events.at(-1), { type: 'uneject', endpoint: 3, atMs: 30_000 });
  });

  it('a success resets the consecutive counters', () => {
    const { od } = setup(10);
    repeat(od, 0, '5xx', 4);
    od.record(0, 'success');
    repeat(od, 0, '5xx', 4);
    assert.equal(od.isEjected(0), false);
  });

  it('ejects on consecutive gateway errors with the more specific reason', () => {
    const { od, events } = setup(10, { consecutive5xx: 100 });
    repeat(od, 1, 'gateway-error', 5);
    assert.equal(od.isEjected(1), true);
    assert.equal(events[0]?.type === 'eject' && events[0].reason, 'consecutive-gateway-failure');
  });

  it('a non-gateway 5xx breaks a gateway run but still counts as a 5xx', () => {
    const { od, events } = setup(10);
    for (const o of ['gateway-error', 'gateway-error', '5xx', 'gateway-error', 'gateway-error'] as const) od.record(2, o);
    assert.equal(od.isEjected(2), true);
    assert.equal(events[0]?.type === 'eject' && events[0].reason, 'consecutive-5xx');
  });

  it('counts local-origin failures as gateway failures unless split', () => {
    const merged = setup(10);
    repeat(merged.od, 0, 'local-origin-failure', 5);
    assert.equal(merged.events[0]?.type === 'eject' && merged.events[0].reason, 'consecutive-gateway-failure');

    const split = setup(10, { splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailure: 3 });
    repeat(split.od, 0, '5xx', 4);
    repeat(split.od, 0, 'local-origin-failure', 2);
    assert.equal(split.od.isEjected(0), false); // local failures do not feed the 5xx run
    split.od.record(0, 'local-origin-failure');
    assert.equal(split.events[0]?.type === 'eject' && split.events[0].reason, 'consecutive-local-origin-failure');
  });

  it('never ejects more than max_ejection_percent of the cluster', () => {
    const { clock, od, events } = setup(20); // 10% of 20 = 2
    for (let i = 0; i < 5; i++) repeat(od, i, '5xx', 5);
    assert.equal(od.ejectedCount(), 2);
    assert.deepEqual([0, 1, 2, 3, 4].map((i) => od.isEjected(i)), [true, true, false, false, false]);
    assert.equal(od.ejectionsOverflowTotal, 3);
    assert.equal(events.filter((e) => e.type === 'eject-overflow').length, 3);
    // The overflowed counter was reset: once capacity frees up it takes a fresh run of failures.
    clock.advance(30_000);
    od.record(2, '5xx');
    assert.equal(od.isEjected(2), false);
    repeat(od, 2, '5xx', 4);
    assert.equal(od.isEjected(2), true);
  });

  it('ejects nothing in a small cluster by default, one with alwaysEjectOneHost', () => {
    const strict = setup(5);
    repeat(strict.od, 0, '5xx', 5);
    assert.equal(strict.od.ejectedCount(), 0);
    assert.equal(strict.od.ejectionsOverflowTotal, 1);

    const lenient = setup(5, { alwaysEjectOneHost: true });
    repeat(lenient.od, 0, '5xx', 5);
    repeat(lenient.od, 1, '5xx', 5);
    assert.equal(lenient.od.ejectedCount(), 1);
    assert.equal(lenient.od.isEjected(0), true);
  });

  it('lets a larger max_ejection_percent eject more', () => {
    const { od } = setup(4, { maxEjectionPercent: 50 });
    for (let i = 0; i < 4; i++) repeat(od, i, '5xx', 5);
    assert.equal(od.ejectedCount(), 2);
  });

  it('grows the ejection time with each ejection in a row, capped at max_ejection_time', () => {
    const { clock, od, events } = setup(10, { baseEjectionTimeMs: 30_000, maxEjectionTimeMs: 100_000 });
    const durations: number[] = [];
    for (let k = 0; k < 6; k++) {
      repeat(od, 0, '5xx', 5);
      const until = od.ejectedUntil(0);
      assert.ok(until !== undefined);
      durations.push(until - clock.now());
      clock.advance(until - clock.now()); // fail again right after returning
    }
    assert.deepEqual(durations, [30_000, 60_000, 90_000, 100_000, 100_000, 100_000]);
    assert.equal(events.filter((e) => e.type === 'eject').length, 6);
  });

  it('decays the multiplier while the endpoint stays healthy (Envoy: one step per interval after base time)', () => {
    const { clock, od } = setup(10, { baseEjectionTimeMs: 30_000, intervalMs: 10_000 });
    repeat(od, 0, '5xx', 5);
    clock.advance(30_000);
    repeat(od, 0, '5xx', 5); // 60 s
    clock.advance(60_000);
    assert.equal(od.ejectionMultiplier(0), 2);
    clock.advance(29_999);
    assert.equal(od.ejectionMultiplier(0), 2);
    clock.advance(1);
    assert.equal(od.ejectionMultiplier(0), 1);
    clock.advance(10_000);
    assert.equal(od.ejectionMultiplier(0), 0);
    repeat(od, 0, '5xx', 5);
    assert.equal(od.ejectedUntil(0)! - clock.now(), 30_000); // back to the base time
  });

  it('ignores outcomes recorded while ejected', () => {
    const { clock, od } = setup(10);
    repeat(od, 0, '5xx', 5);
    repeat(od, 0, '5xx', 20); // in-flight requests finishing
    clock.advance(30_000);
    assert.equal(od.isEjected(0), false);
    repeat(od, 0, '5xx', 4);
    assert.equal(od.isEjected(0), false);
    assert.equal(od.ejectionsTotal, 1);
  });

  it('tick() returns expired endpoints and reports when they became eligible', () => {
    const { clock, od, events } = setup(20);
    repeat(od, 0, '5xx', 5);
    clock.advance(10_000);
    repeat(od, 1, '5xx', 5);
    clock.advance(45_000);
    od.tick();
    assert.deepEqual(
      events.filter((e) => e.type === 'uneject'),
      [
        { type: 'uneject', endpoint: 0, atMs: 30_000 },
        { type: 'uneject', endpoint: 1, atMs: 40_000 },
      ],
    );
    assert.equal(od.ejectedCount(), 0);
  });

  it('disables a detector with a threshold of 0, and tolerates unknown indices', () => {
    const { od } = setup(10, { consecutive5xx: 0, consecutiveGatewayFailure: 0 });
    repeat(od, 0, 'gateway-error', 50);
    assert.equal(od.isEjected(0), false);
    od.record(99, '5xx');
    assert.equal(od.isEjected(99), false);
    assert.equal(od.ejectedUntil(99), undefined);
  });

  it('keeps state for surviving indices when resized', () => {
    const { od } = setup(10);
    repeat(od, 0, '5xx', 5);
    od.setEndpointCount(30);
    assert.equal(od.isEjected(0), true);
    assert.equal(od.endpointCount, 30);
    od.setEndpointCount(0);
    assert.equal(od.ejectedCount(), 0);
    assert.throws(() => od.setEndpointCount(-1), RangeError);
  });

  it('keeps the ejected fraction within max_ejection_percent under random failures', () => {
    const rnd = mulberry32(2024);
    const n = 50;
    const { clock, od } = setup(n);
    const badness = Array.from({ length: n }, () => rnd()); // some endpoints fail far more than others
    for (let step = 0; step < 10_000; step++) {
      clock.advance(Math.floor(rnd() * 50));
      const i = Math.floor(rnd() * n);
      const r = rnd();
      od.record(i, r < badness[i]! ** 2 ? (r < 0.3 ? 'gateway-error' : '5xx') : 'success');
      assert.ok(od.ejectedCount() <= 5);
    }
    assert.ok(od.ejectionsTotal > 0 && od.ejectionsOverflowTotal > 0);
  });

  it('validates configuration', () => {
    const clock = new FakeClock();
    assert.throws(() => new OutlierDetector({ baseEjectionTimeMs: 0 }, clock, 3), RangeError);
    assert.throws(() => new OutlierDetector({}, clock, 1.5), RangeError);
  });
});
