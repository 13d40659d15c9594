import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../testing.js';
import { DeadlineTimer } from './deadline-timer.js';

describe('DeadlineTimer', () => {
  it('expires each deadline at its time, in order, whatever order they were added in', () => {
    const clock = new FakeClock();
    const timer = new DeadlineTimer(clock);
    const fired: [string, number][] = [];
    timer.add(300, () => fired.push(['c', clock.now()]));
    timer.add(100, () => fired.push(['a', clock.now()]));
    timer.add(200, () => fired.push(['b', clock.now()]));
    clock.advance(99);
    assert.deepEqual(fired, []);
    clock.advance(1000);
    assert.deepEqual(fired, [['a', 100], ['b', 200], ['c', 300]]);
    assert.equal(timer.size, 0);
  });

  it('a cleared deadline never expires, and the others still do', () => {
    const clock = new FakeClock();
    const timer = new DeadlineTimer(clock);
    const fired: string[] = [];
    const a = timer.add(100, () => fired.push('a'));
    timer.add(150, () => fired.push('b'));
    timer.clear(a);
    clock.advance(500);
    assert.deepEqual(fired, ['b']);
  });

  it('many deadlines share one timer: re-armed only for an earlier deadline', () => {
    const clock = new FakeClock();
    let armed = 0;
    const counting = { now: () => clock.now(), setTimeout: (fn: () => void, ms: number) => (armed++, clock.setTimeout(fn, ms)) };
    const timer = new DeadlineTimer(counting);
    for (let i = 0; i < 1000; i++) timer.clear(timer.add(15_000 + i, () => assert.fail('cleared')));
    assert.equal(armed, 1);
    clock.advance(20_000);
    assert.equal(armed, 1, 'nothing pending after the first fire: no re-arm');
  });

  it('a deadline added by an expiring callback is honoured', () => {
    const clock = new FakeClock();
    const timer = new DeadlineTimer(clock);
    const fired: number[] = [];
    timer.add(10, () => timer.add(clock.now() + 5, () => fired.push(clock.now())));
    clock.advance(100);
    assert.deepEqual(fired, [15]);
  });
});
