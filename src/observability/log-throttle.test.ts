import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../policies/testing.js';
import { LogThrottle } from './log-throttle.js';

describe('LogThrottle', () => {
  it('lets one event per interval through and says how many it held back', () => {
    const clock = new FakeClock();
    const t = new LogThrottle(clock, 1000);
    assert.equal(t.take(), 0);
    for (let i = 0; i < 5; i++) assert.equal(t.take(), undefined);
    clock.advance(999);
    assert.equal(t.take(), undefined);
    clock.advance(1);
    assert.equal(t.take(), 6);
    clock.advance(5000);
    assert.equal(t.take(), 0);
  });
});
