import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { BodyIdleWatch, leftQueued, watchEnd, WriteStallWatch } from './watchdog.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A writable that takes nothing until `take()` lets one queued write complete. */
function stuckWritable(): { out: Writable; take: () => void } {
  const pending: Array<() => void> = [];
  const out = new Writable({
    highWaterMark: 4,
    write(_chunk, _enc, cb) {
      pending.push(cb);
    },
  });
  return { out, take: () => pending.shift()?.() };
}

describe('BodyIdleWatch', () => {
  it('fires when a body being read gets no bytes for the timeout', async () => {
    const body = new PassThrough();
    body.resume();
    let fired = 0;
    const w = new BodyIdleWatch(body, 150, () => fired++, () => 0);
    await sleep(100);
    w.last = performance.now();
    await sleep(80);
    assert.equal(fired, 0, 'bytes 80 ms ago');
    await sleep(200);
    assert.equal(fired, 1);
    w.stop();
  });

  it('does not count time nobody reads the body, nor time the response streams', async () => {
    const body = new PassThrough();
    let fired = 0;
    let written = 0;
    const w = new BodyIdleWatch(body, 60, () => fired++, () => written);
    await sleep(200);
    assert.equal(fired, 0, 'not flowing: the sidecar is not reading');
    body.resume();
    const talk = setInterval(() => (written += 10), 10);
    await sleep(200);
    clearInterval(talk);
    assert.equal(fired, 0, 'the response is moving');
    await sleep(300);
    assert.equal(fired, 1, 'both directions quiet');
    w.stop();
  });

  it('stops at the end of the body', async () => {
    const body = new PassThrough();
    body.resume();
    let fired = 0;
    new BodyIdleWatch(body, 40, () => fired++, () => 0);
    body.end('x');
    await sleep(100);
    assert.equal(fired, 0);
  });
});

describe('WriteStallWatch', () => {
  it('fires when the downstream takes nothing for the timeout, not while it takes some', async () => {
    const { out, take } = stuckWritable();
    for (let i = 0; i < 30; i++) out.write(Buffer.alloc(8));
    let fired = 0;
    const w = new WriteStallWatch(out, 100, () => fired++);
    w.stalled();
    const slowReader = setInterval(take, 20);
    await sleep(250);
    clearInterval(slowReader);
    assert.equal(fired, 0, 'a slow reader is not a stalled one');
    await sleep(400);
    assert.equal(fired, 1);
    w.stop();
  });

  it('a drain disarms it; a close stops it', async () => {
    const { out } = stuckWritable();
    out.write(Buffer.alloc(8));
    let fired = 0;
    const w = new WriteStallWatch(out, 40, () => fired++);
    w.stalled();
    w.drained();
    await sleep(80);
    assert.equal(fired, 0);
    w.stalled();
    out.destroy();
    await sleep(80);
    assert.equal(fired, 0);
  });

  it('a body that left at once needs no watch; one stuck in the writable is cut', async () => {
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    sink.end(Buffer.alloc(100));
    assert.equal(leftQueued(sink), false);
    const { out } = stuckWritable();
    out.end(Buffer.alloc(100));
    assert.equal(leftQueued(out), true);
    let fired = 0;
    watchEnd(out, 30, () => fired++);
    await sleep(150);
    assert.equal(fired, 1);
  });
});
