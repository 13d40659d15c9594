// HealthState transitions for each initial state, probe-interval jitter bounds, and the panic threshold.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HealthState, nextIntervalMs, panic } from './health-state.js';
import { mulberry32 } from '../testing.js';

function run(h: HealthState, results: string): string[] {
  return [...results].map((c) => h.record(c === '+').state);
}

describe('HealthState', () => {
  it('defaults: unknown and routable, thresholds 2 and 3', () => {
    const h = new HealthState();
    assert.equal(h.state, 'unknown');
    assert.equal(h.routable, true);
    assert.deepEqual([h.healthyThreshold, h.unhealthyThreshold], [2, 3]);
  });

  it('unknown: one success confirms healthy', () => {
    const h = new HealthState();
    assert.deepEqual(h.record(true), { previous: 'unknown', state: 'healthy', changed: true });
  });

  it('unknown: stays routable until unhealthy_threshold failures in a row', () => {
    const h = new HealthState();
    assert.deepEqual(run(h, '--'), ['unknown', 'unknown']);
    assert.equal(h.routable, true);
    assert.deepEqual(h.record(false), { previous: 'unknown', state: 'unhealthy', changed: true });
    assert.equal(h.routable, false);
  });

  it('healthy -> unhealthy after 3 consecutive failures; a success in between resets the run', () => {
    const h = new HealthState({ initialState: 'healthy' });
    assert.deepEqual(run(h, '--+--'), ['healthy', 'healthy', 'healthy', 'healthy', 'healthy']);
    assert.deepEqual(run(h, '-'), ['unhealthy']);
  });

  it('unhealthy -> healthy after 2 consecutive successes; a failure in between resets the run', () => {
    const h = new HealthState({ initialState: 'healthy' });
    run(h, '---');
    assert.deepEqual(run(h, '+-+'), ['unhealthy', 'unhealthy', 'unhealthy']);
    assert.deepEqual(h.record(true), { previous: 'unhealthy', state: 'healthy', changed: true });
  });

  it("initial 'unhealthy': no traffic until a probe passes, and the very first success is enough (Envoy)", () => {
    const h = new HealthState({ initialState: 'unhealthy' });
    assert.equal(h.routable, false);
    assert.deepEqual(run(h, '+'), ['healthy']);
    const late = new HealthState({ initialState: 'unhealthy' });
    assert.deepEqual(run(late, '-++'), ['unhealthy', 'unhealthy', 'healthy']); // first check failed: normal threshold
  });

  it('reports changed only on transitions', () => {
    const h = new HealthState({ initialState: 'healthy', unhealthyThreshold: 1, healthyThreshold: 1 });
    assert.deepEqual(
      [...'++--+'].map((c) => h.record(c === '+').changed),
      [false, false, true, false, true],
    );
  });

  it('rejects thresholds below 1', () => {
    assert.throws(() => new HealthState({ healthyThreshold: 0 }), RangeError);
    assert.throws(() => new HealthState({ unhealthyThreshold: 1.5 }), RangeError);
  });
});

describe('nextIntervalMs', () => {
  it('adds between 0 and jitterRatio * interval', () => {
    const rnd = mulberry32(5);
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < 1000; i++) {
      const v = nextIntervalMs(10_000, 0.2, rnd);
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.ok(min >= 10_000 && min < 10_100, `min=${min}`);
    assert.ok(max < 12_000 && max > 11_900, `max=${max}`);
  });

  it('is exactly the interval without jitter, and 0 for a non-positive interval', () => {
    assert.equal(nextIntervalMs(5000, 0, () => 0.7), 5000);
    assert.equal(nextIntervalMs(0, 0.5, () => 0.7), 0);
    assert.equal(nextIntervalMs(1000, 0.5, () => Number.NaN), 1000);
  });
});

describe('panic', () => {
  it('is on when the healthy share is below the threshold (default 50%)', () => {
    assert.equal(panic(5, 10), false); // exactly 50%: not below
    assert.equal(panic(4, 10), true);
    assert.equal(panic(0, 3), true);
    assert.equal(panic(1, 3, 30), false);
    assert.equal(panic(1, 4, 30), true);
  });

  it('is off when disabled (0%) or the cluster is empty', () => {
    assert.equal(panic(0, 10, 0), false);
    assert.equal(panic(0, 0), false);
  });
});
