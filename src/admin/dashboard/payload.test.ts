import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyHistory } from '../../observability/latency-history.js';
import type { DebugRecord } from '../../observability/request-debug.js';
import { buildPayload } from './payload.js';

const rec = (id: string, status: number, durationMs: number, attempts = 1): DebugRecord => ({
  id, at: 0, listener: 'in', method: 'GET', authority: 'a', path: '/<script>', route: 'r', cluster: 'c', status, durationMs,
  flag: undefined, error: undefined, deadlineMs: undefined, attempts: [], attemptCount: attempts, failed: status >= 500, slow: false, decisions: [], bytes: 0,
});

test('buildPayload: rps from two ticks, success rate, slowest and failed lists, series per kind', () => {
  let now = 120_000;
  const h = new LatencyHistory({ now: () => now });
  for (let i = 0; i < 10; i++) h.record('in', 'r', 'c', '127.0.0.1:1', 5);
  const first = buildPayload(h.snapshot(), { failed: [], recent: [rec('a', 200, 5)] }, [], undefined, now);
  assert.deepEqual(first.rps, { app: 0, upstream: 0 });
  assert.equal(first.totals.app, 10);
  now += 1000;
  for (let i = 0; i < 20; i++) h.record('in', 'r', 'c', '127.0.0.1:1', 50);
  const debug = { failed: [rec('x', 503, 80, 3)], recent: [rec('a', 200, 5), rec('b', 200, 9)] };
  const p = buildPayload(h.snapshot(), debug, [], first.totals, now);
  assert.equal(p.rps.app, 20);
  assert.equal(p.rps.upstream, 22); // two retries on top (estimated from the recorded requests)
  // With the per-endpoint attempt counters the rate is theirs, not the estimate.
  const counted = buildPayload(h.snapshot(), debug, [], { ...first.totals, upstream: 100 }, now, 10, 131);
  assert.equal(counted.rps.upstream, 31);
  // With the answer counters the success rate is over the window, not the rings (which keep failures longer).
  const start = { ...first.totals, answered: 1000, failed: 10 };
  const windowed = buildPayload(h.snapshot(), debug, [], first.totals, now, 10, undefined, { answered: 2000, failed: 20 }, start);
  assert.equal(windowed.successRate, 0.99);
  assert.equal(buildPayload(h.snapshot(), debug, [], first.totals, now, 10, undefined, { answered: 1000, failed: 10 }, start).successRate, undefined, 'nothing answered in the window');
  assert.equal(p.successRate, 2 / 3);
  // A browser's first tick has no window: no rate (not the whole run's under a "last 10 s" label).
  const firstTick = buildPayload(h.snapshot(), debug, [], undefined, now, 10, undefined, { answered: 25, failed: 1 }, undefined);
  assert.equal(firstTick.successRate, undefined);
  assert.equal(firstTick.successWindowS, 0);
  assert.equal(windowed.successWindowS, 1);
  assert.deepEqual(p.failed.map((r) => r.id), ['x']);
  assert.deepEqual(p.slowest.map((r) => r.id), ['x', 'b', 'a']);
  assert.equal(p.slowest[0]!.path, 'a/<script>'); // raw: the page inserts it with textContent
  assert.deepEqual(p.series.route.map((s) => s.name), ['in/r']);
  assert.deepEqual(p.series.endpoint.map((s) => s.name), ['c/127.0.0.1:1']);
  assert.ok(p.series.listener[0]!.window.p99! > 40);
  assert.equal(p.series.listener[0]!.minutes.length, 15);
});

test('buildPayload: empty history and rings give empty lists and no success rate', () => {
  const h = new LatencyHistory({ now: () => 0 });
  const p = buildPayload(h.snapshot(), { failed: [], recent: [] }, [], undefined, 0);
  assert.equal(p.successRate, undefined);
  assert.deepEqual(p.series.listener, []);
  assert.deepEqual(p.failed, []);
});
