// gRPC message framing: frames split and joined across chunks, compressed and oversized frames refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame, FrameError, FrameReader } from './grpc-frame.js';

describe('gRPC frames', () => {
  it('reassembles messages whatever the chunking', () => {
    const stream = Buffer.concat([frame(Buffer.from('one')), frame(Buffer.alloc(0)), frame(Buffer.from('three'))]);
    for (let size = 1; size <= stream.length; size++) {
      const r = new FrameReader(1024);
      const got: string[] = [];
      for (let at = 0; at < stream.length; at += size) got.push(...r.push(stream.subarray(at, at + size)).map((m) => m.toString()));
      assert.deepEqual(got, ['one', '', 'three'], `chunks of ${size}`);
      assert.equal(r.leftover, 0);
    }
  });

  it('counts an unfinished frame as leftover', () => {
    const r = new FrameReader(1024);
    assert.deepEqual(r.push(frame(Buffer.from('abc')).subarray(0, 6)), []);
    assert.equal(r.leftover, 6);
  });

  it('refuses compressed and oversized messages', () => {
    const compressed = frame(Buffer.from('x'));
    compressed[0] = 1;
    assert.throws(() => new FrameReader(1024).push(compressed), (e: unknown) => e instanceof FrameError && /compressed/.test(e.message));
    assert.throws(() => new FrameReader(2).push(frame(Buffer.from('abc'))), /over the limit of 2/);
  });
});
