import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoOf } from './access-fields.js';

describe('isoOf', () => {
  it('is toISOString, across milliseconds, second and day boundaries, and a clock that steps back', () => {
    const start = Date.UTC(2026, 11, 31, 23, 59, 58, 990);
    const times = [start, start, start + 1, start + 9, start + 10, start + 99, start + 100, start + 1009, start + 1010, start + 2500, start - 5000, 0, 999, 1000, -1, -999, -1001, 253402300799999, 253402300800000];
    for (let ms = start; ms < start + 3000; ms += 7) times.push(ms);
    for (const ms of times) assert.equal(isoOf(ms), new Date(ms).toISOString(), `at ${ms}`);
  });
});
