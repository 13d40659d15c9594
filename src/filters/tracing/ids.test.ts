// Id generation: lower-case hex of the W3C lengths, distinct, never all zero, one crypto fill per pool.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomIds } from './ids.js';

test('trace ids are 32 and span ids 16 lower-case hex digits, and they do not repeat', () => {
  const ids = randomIds();
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const t = ids.traceId();
    const s = ids.spanId();
    assert.match(t, /^[0-9a-f]{32}$/);
    assert.match(s, /^[0-9a-f]{16}$/);
    seen.add(t).add(s);
  }
  assert.equal(seen.size, 4000);
});

test('an all-zero id is skipped, and the pool is refilled only when it runs out', () => {
  let fills = 0;
  // The first fill is all zeros but its last byte: the first ids drawn from it are invalid and skipped.
  const ids = randomIds((b) => {
    fills++;
    b.fill(fills === 1 ? 0 : 0xab);
    if (fills === 1) b[b.length - 1] = 1;
  });
  assert.equal(ids.spanId(), '0000000000000001', 'the only non-zero id of the first pool');
  assert.equal(fills, 1);
  assert.equal(ids.traceId(), 'ab'.repeat(16));
  assert.equal(fills, 2);
  for (let i = 0; i < 4096 / 16 - 1; i++) ids.traceId();
  assert.equal(fills, 2, '256 trace ids of 16 bytes come from one 4 KiB pool');
  ids.traceId();
  assert.equal(fills, 3);
});
