import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newRequestId } from './request-id.js';

test('request ids are version 4 UUIDs and do not repeat across pool refills', () => {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const id = newRequestId();
    assert.match(id, uuid);
    seen.add(id);
  }
  assert.equal(seen.size, 5000);
});
