import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gcra, type GcraLimit } from './gcra.js';

const limit: GcraLimit = { burst: 3, intervalMs: 100 };

test('gcra: a burst from idle, then refused with the time until one request fits', () => {
  let tat: number | undefined;
  const now = 1_000;
  const remaining: number[] = [];
  for (let i = 0; i < 3; i++) {
    const d = gcra(limit, tat, now);
    assert.equal(d.allowed, true);
    remaining.push(d.remaining);
    tat = d.tat;
  }
  assert.deepEqual(remaining, [2, 1, 0]);
  const refused = gcra(limit, tat, now);
  assert.equal(refused.allowed, false);
  assert.equal(refused.retryAfterMs, 100);
  assert.equal(refused.tat, tat, 'a refusal does not consume');
  assert.equal(gcra(limit, tat, now + 100).allowed, true);
});

test('gcra: the sustained rate is one per interval, and idle time refills only up to the burst', () => {
  let tat: number | undefined;
  let allowed = 0;
  for (let now = 0; now < 10_000; now += 10) {
    const d = gcra(limit, tat, now);
    if (d.allowed) allowed++;
    tat = d.tat;
  }
  assert.ok(allowed >= 100 && allowed <= 103, `allowed ${allowed}`);
  const afterIdle = gcra(limit, tat, 1_000_000);
  assert.equal(afterIdle.remaining, 2);
});
