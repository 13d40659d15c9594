// A response body that fails mid-way reaches an HTTP/2 client as RST_STREAM, never as END_STREAM: node's
// stream.close(code) would end the stream cleanly first, so a truncated body looked complete.
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FrameType, getFields, headersFrame, RawH2 } from '../helpers/h2-frames.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';

describe('a body cut mid-way, to an HTTP/2 client', { timeout: 30_000 }, () => {
  let upstream: net.Server;
  let sidecar: RunningSidecar;

  before(async () => {
    // HTTP/1.1 upstream: promises 100000 bytes, sends 10, then resets the connection.
    upstream = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\ncontent-type: application/octet-stream\r\n\r\n0123456789');
        setTimeout(() => socket.resetAndDestroy(), 100);
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes: [{ match: { prefix: / }, cluster: app }]
clusters:
  - { name: app, endpoints: ["127.0.0.1:${(upstream.address() as AddressInfo).port}"] }
`);
  });

  after(async () => {
    await sidecar?.stop();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('RST_STREAM (INTERNAL_ERROR) after the bytes that came, and no END_STREAM', async () => {
    const raw = await RawH2.open(sidecar.ports.in!);
    try {
      await raw.write(headersFrame(1, getFields('/cut'), true));
      const end = Date.now() + 5000;
      const ofStream = () => raw.frames.filter((f) => f.streamId === 1);
      while (!ofStream().some((f) => f.type === FrameType.RST_STREAM || f.flags & 0x1)) {
        if (Date.now() > end) throw new Error('stream 1 did not end');
        await new Promise((r) => setTimeout(r, 10));
      }
      await new Promise((r) => setTimeout(r, 200));
      const frames = ofStream();
      assert.ok(!frames.some((f) => (f.type === FrameType.DATA || f.type === FrameType.HEADERS) && f.flags & 0x1), `no END_STREAM: ${JSON.stringify(frames.map((f) => [f.type, f.flags]))}`);
      const rst = frames.find((f) => f.type === FrameType.RST_STREAM);
      assert.ok(rst, 'a RST_STREAM');
      assert.equal(rst.payload.readUInt32BE(0), 2, 'INTERNAL_ERROR');
      const data = Buffer.concat(frames.filter((f) => f.type === FrameType.DATA).map((f) => f.payload));
      assert.equal(data.toString(), '0123456789');
    } finally {
      raw.socket.destroy();
    }
  });
});
