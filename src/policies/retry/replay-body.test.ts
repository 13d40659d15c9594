// ReplayableBody: each attempt gets the whole body, however far the previous attempt read; over the limit it is sent once.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, type Readable } from 'node:stream';
import { ReplayableBody } from './replay-body.js';

async function readAll(r: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('ReplayableBody', () => {
  it('a source that fails after its attempt stopped being read is not an uncaught exception', async () => {
    const src = new PassThrough();
    const rb = new ReplayableBody(src, 100);
    const attempt = rb.next()!;
    src.write('part');
    // The consumer (an upstream that answered early) detached without reading to the end; then the client drops.
    src.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    await new Promise((r) => setImmediate(r));
    assert.equal(attempt.destroyed, true);
    assert.match(String(attempt.errored), /aborted/);
  });

  it('replays a fully read body', async () => {
    const src = new PassThrough();
    const rb = new ReplayableBody(src, 100);
    const first = rb.next()!;
    src.end('abc');
    assert.equal(await readAll(first), 'abc');
    assert.equal(await readAll(rb.next()!), 'abc');
    assert.equal(rb.buffered, 3);
  });

  it('a retry after a partial read gets the buffered part and then the rest', async () => {
    const src = new PassThrough();
    const rb = new ReplayableBody(src, 100);
    const first = rb.next()!;
    src.write('one-');
    const got = await new Promise<Buffer>((resolve) => first.once('data', resolve));
    assert.equal(got.toString(), 'one-');
    first.destroy(); // the attempt failed
    const second = rb.next()!;
    src.end('two');
    assert.equal(await readAll(second), 'one-two');
  });

  it('a retry before anything was read gets the whole body', async () => {
    const src = new PassThrough();
    const rb = new ReplayableBody(src, 100);
    rb.next();
    const second = rb.next()!;
    src.end('whole');
    assert.equal(await readAll(second), 'whole');
  });

  it('over the limit: the first attempt still gets everything, but there is no replay', async () => {
    const src = new PassThrough();
    const rb = new ReplayableBody(src, 4);
    const first = rb.next()!;
    src.end('0123456789');
    assert.equal(await readAll(first), '0123456789');
    assert.equal(rb.replayable, false);
    assert.equal(rb.buffered, 0);
    assert.equal(rb.next(), undefined);
  });

  it('release() stops buffering while the current attempt keeps streaming', async () => {
    const src = new PassThrough();
    const rb = new ReplayableBody(src, 100);
    const first = rb.next()!;
    src.write('ab');
    await new Promise((r) => setImmediate(r));
    rb.release();
    src.end('cd');
    assert.equal(await readAll(first), 'abcd');
    assert.equal(rb.buffered, 0);
    assert.equal(rb.next(), undefined);
  });

  it('a source error reaches the attempt reading it', async () => {
    const src = new PassThrough();
    const rb = new ReplayableBody(src, 100);
    const first = rb.next()!;
    src.destroy(new Error('client went away'));
    await assert.rejects(readAll(first), /client went away/);
  });
});
