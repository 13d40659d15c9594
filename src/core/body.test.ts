import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { bodyStream, discardBody, isWholeBody, whenBodyDone } from './body.js';

describe('ResponseBody helpers', () => {
  it('a whole body is done at once; a stream when it closes', async () => {
    let done = 0;
    whenBodyDone(Buffer.from('x'), () => done++);
    whenBodyDone(null, () => done++);
    assert.equal(done, 2);
    const stream = Readable.from([Buffer.from('y')]);
    whenBodyDone(stream, () => done++);
    assert.equal(done, 2, 'not before the stream is read');
    stream.resume();
    await new Promise((r) => stream.once('close', r));
    assert.equal(done, 3);
  });

  it('a stream that already closed is done too (soon after, not never); each callback runs once', async () => {
    const closed = Readable.from([Buffer.from('y')]);
    closed.destroy();
    await new Promise((r) => closed.once('close', r));
    let done = 0;
    whenBodyDone(closed, () => done++);
    assert.equal(done, 0, 'not synchronously: callers finish their own bookkeeping first');
    await Promise.resolve();
    assert.equal(done, 1);
    const open = Readable.from([Buffer.from('z')]);
    whenBodyDone(open, () => done++);
    whenBodyDone(open, () => done++);
    open.destroy();
    await new Promise((r) => open.once('close', r));
    await new Promise((r) => setImmediate(r));
    assert.equal(done, 3, 'each callback once: a stream emits close once');
  });

  it('discarding destroys a stream and leaves a buffer alone', () => {
    const stream = Readable.from([Buffer.from('y')]);
    discardBody(stream);
    assert.equal(stream.destroyed, true);
    const whole = Buffer.from('z');
    discardBody(whole);
    discardBody(null);
    assert.equal(whole.toString(), 'z');
  });

  it('bodyStream gives a readable either way, with the same bytes', async () => {
    const whole = Buffer.from('hello');
    assert.equal(isWholeBody(whole), true);
    const chunks: Buffer[] = [];
    for await (const c of bodyStream(whole)) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'hello');
    const stream = Readable.from([Buffer.from('a')]);
    assert.equal(isWholeBody(stream), false);
    assert.equal(bodyStream(stream), stream);
  });
});
