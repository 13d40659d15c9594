// FakeClock: timers fire in due order during advance(), cancellation works, and nested timers are honoured.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from './testing.js';

describe('FakeClock', () => {
  it('fires due timers in order with now() at their due time', () => {
    const c = new FakeClock(100);
    const log: string[] = [];
    c.setTimeout(() => log.push(`b@${c.now()}`), 20);
    c.setTimeout(() => log.push(`a@${c.now()}`), 10);
    c.setTimeout(() => log.push(`c@${c.now()}`), 20); // same time: creation order
    c.setTimeout(() => log.push('late'), 31);
    c.advance(30);
    assert.deepEqual(log, ['a@110', 'b@120', 'c@120']);
    assert.equal(c.now(), 130);
    assert.equal(c.pending(), 1);
  });

  it('cancels timers and runs timers scheduled by timers within the same advance', () => {
    const c = new FakeClock();
    const log: number[] = [];
    const cancel = c.setTimeout(() => log.push(-1), 5);
    c.setTimeout(() => c.setTimeout(() => log.push(c.now()), 5), 5);
    cancel();
    c.advance(10);
    assert.deepEqual(log, [10]);
    assert.throws(() => c.advance(-1), RangeError);
  });
});
