import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FairShare } from './fair-share.js';

describe('FairShare', () => {
  const a = {};
  const b = {};
  const c = {};

  it('takes share x capacity as the limit, at least one connection', () => {
    assert.equal(new FairShare(128, 0.5).limit, 64);
    assert.equal(new FairShare(4, 0.5).limit, 2);
    assert.equal(new FairShare(1, 0.5).limit, 1);
    assert.equal(new FairShare(10, 0.25).limit, 2);
  });

  it('lets a lone downstream queue whatever it holds (the mesh case)', () => {
    const f = new FairShare(4, 0.5);
    for (let i = 0; i < 4; i++) f.hold(a);
    assert.equal(f.mayQueue(a), true);
    f.queued(a);
    f.queued(a);
    assert.equal(f.mayQueue(a), true, 'its own waiters are no contention');
  });

  it('refuses a downstream at its share while another downstream waits, and only then', () => {
    const f = new FairShare(4, 0.5);
    f.hold(a);
    f.hold(a);
    f.hold(a);
    f.hold(b);
    assert.equal(f.mayQueue(a), true, 'nobody else waits');
    f.queued(b);
    assert.equal(f.mayQueue(a), false, 'b waits and a holds 3 >= 2');
    assert.equal(f.mayQueue(c), true, 'a newcomer under its share may wait');
    assert.equal(f.mayQueue(b), true, 'b holds 1 < 2');
    f.dequeued(b);
    assert.equal(f.mayQueue(a), true);
    f.unhold(a);
    f.unhold(a);
    f.queued(b);
    assert.equal(f.mayQueue(a), true, 'a holds 1 < 2 again');
  });

  it('hands a freed connection to the oldest waiter under its share, else first come first served', () => {
    const f = new FairShare(4, 0.5);
    for (let i = 0; i < 4; i++) f.hold(a);
    const queue = [a, a, a, b, a];
    for (const k of queue) f.queued(k);
    const id = (k: object): object => k;
    assert.equal(f.pick(queue, id), 3, 'b holds nothing: it goes before the hog');
    f.dequeued(b);
    queue.splice(3, 1);
    assert.equal(f.pick(queue, id), 0, 'only the hog waits: its oldest');
    const g = new FairShare(4, 0.5);
    g.hold(a);
    g.hold(b);
    g.hold(b);
    const q2 = [b, a];
    for (const k of q2) g.queued(k);
    assert.equal(g.pick(q2, id), 1, 'b is at its share, a is not');
    g.hold(a);
    assert.equal(g.pick(q2, id), 0, 'both at their share: the oldest');
  });

  it('knows whether any downstream holds its share (anything to reclaim)', () => {
    const f = new FairShare(4, 0.5);
    f.hold(a);
    assert.equal(f.anyAtLimit, false);
    f.hold(a);
    assert.equal(f.anyAtLimit, true);
    f.hold(a);
    f.unhold(a);
    assert.equal(f.anyAtLimit, true, 'still at 2');
    f.unhold(a);
    assert.equal(f.anyAtLimit, false);
  });

  it('ignores requests of no downstream connection', () => {
    const f = new FairShare(2, 0.5);
    f.hold(undefined);
    f.queued(undefined);
    assert.equal(f.held(undefined), 0);
    assert.equal(f.mayQueue(undefined), true);
    f.unhold(undefined);
    f.dequeued(undefined);
    f.unhold(a);
    assert.equal(f.held(a), 0, 'never below zero');
  });
});
