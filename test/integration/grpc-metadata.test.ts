// gRPC metadata through one and two sidecars: ASCII and -bin, initial and trailing, both ways; a trailers-only error
// (one HEADERS frame with END_STREAM) stays trailers-only, with grpc-status, grpc-message and grpc-status-details-bin
// exactly as the server sent them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { echoClient, grpc, startGrpcServer, unary, type EchoClient, type RunningGrpcServer } from '../helpers/grpc.js';
import { startMesh, type Mesh } from '../helpers/grpc-mesh.js';
import { frame, FrameType, headersFrame, RawH2, type ReceivedFrame } from '../helpers/h2-frames.js';

const BIN = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80, 10, 13]);
const DETAILS = Buffer.from([0x08, 0x05, 0x12, 0x03, 0xe2, 0x9c, 0x93, 0x00, 0xff]);
const MESSAGE = 'nicht gefunden: 100% ünïcödé ✓ / 見つかりません';

/** What the server saw of the request's metadata, echoed back. */
let seen: grpc.Metadata | undefined;

function serverHandlers() {
  return {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      seen = call.metadata;
      const mode = call.request.toString();
      if (mode === 'fail') {
        const md = new grpc.Metadata();
        md.set('x-why', 'because');
        md.set('x-why-bin', BIN);
        md.set('grpc-status-details-bin', DETAILS);
        return cb({ code: grpc.status.NOT_FOUND, details: MESSAGE, metadata: md });
      }
      const initial = new grpc.Metadata();
      initial.set('x-initial', 'first');
      initial.set('x-initial-bin', BIN);
      call.sendMetadata(initial);
      const trailing = new grpc.Metadata();
      trailing.set('x-trailing', 'last');
      trailing.set('x-trailing-bin', BIN);
      cb(null, Buffer.from('ok'), trailing);
    },
  };
}

/** A gRPC unary request as raw frames: HEADERS, then one DATA frame with a 5-byte-prefixed message and END_STREAM. */
function rawUnary(streamId: number, message: string): Buffer {
  const msg = Buffer.from(message);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(msg.length, 1);
  return Buffer.concat([
    headersFrame(streamId, [
      [':method', 'POST'],
      [':scheme', 'http'],
      [':path', '/test.Echo/Unary'],
      [':authority', 'grpc.test'],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
    ], false),
    frame(FrameType.DATA, 0x1, streamId, Buffer.concat([prefix, msg])),
  ]);
}

/** The frames the peer sent on stream 1, once it has ended and 300 ms more have passed without another. */
async function framesOfStream(port: number, message: string): Promise<ReceivedFrame[]> {
  const raw = await RawH2.open(port);
  try {
    await raw.write(rawUnary(1, message));
    const end = Date.now() + 5000;
    const ofStream = (): ReceivedFrame[] => raw.frames.filter((f) => f.streamId === 1);
    while (!ofStream().some((f) => f.flags & 0x1 || f.type === FrameType.RST_STREAM)) {
      if (Date.now() > end) throw new Error(`stream 1 did not end: ${JSON.stringify(ofStream().map((f) => [f.type, f.flags]))}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 300));
    return ofStream();
  } finally {
    raw.socket.destroy();
  }
}

// 0 hops: the grpc-js server itself, so every expectation is checked against what the sidecars must keep.
for (const hops of [0, 1, 2] as const) {
  describe(`gRPC metadata through ${hops} sidecar${hops === 1 ? '' : 's'}`, { timeout: 60_000 }, () => {
    let server: RunningGrpcServer;
    let mesh: Mesh;
    let client: EchoClient;

    before(async () => {
      server = await startGrpcServer(serverHandlers());
      mesh = await startMesh(server.address, hops);
      client = echoClient(mesh.port);
    });

    after(async () => {
      client?.close();
      await mesh?.stop();
      await server?.close();
    });

    it('request metadata (ASCII, -bin, repeated) reaches the server as sent', async () => {
      const md = new grpc.Metadata();
      md.set('x-ascii', 'hello world');
      md.add('x-multi', 'one');
      md.add('x-multi', 'two');
      md.set('x-blob-bin', BIN);
      const r = await unary(client, Buffer.from('ok'), md);
      assert.equal(r.error, null);
      assert.deepEqual(seen!.get('x-ascii'), ['hello world']);
      // node:http2 hands a repeated field to the server joined (with or without sidecars).
      assert.deepEqual(seen!.get('x-multi').join(', '), 'one, two');
      assert.ok(Buffer.isBuffer(seen!.get('x-blob-bin')[0]));
      assert.ok((seen!.get('x-blob-bin')[0] as Buffer).equals(BIN));
    });

    it('initial and trailing metadata (ASCII and -bin) reach the client', async () => {
      const r = await unary(client, Buffer.from('ok'));
      assert.equal(r.error, null);
      assert.equal(r.value?.toString(), 'ok');
      assert.deepEqual(r.headers!.get('x-initial'), ['first']);
      assert.ok((r.headers!.get('x-initial-bin')[0] as Buffer).equals(BIN));
      assert.equal(r.status!.code, grpc.status.OK);
      assert.deepEqual(r.status!.metadata.get('x-trailing'), ['last']);
      assert.ok((r.status!.metadata.get('x-trailing-bin')[0] as Buffer).equals(BIN));
      assert.deepEqual(r.headers!.get('x-trailing'), [], 'trailing metadata stays in the trailers');
    });

    it('a trailers-only error: code, unicode message, details-bin and metadata intact', async () => {
      const r = await unary(client, Buffer.from('fail'));
      assert.equal(r.error?.code, grpc.status.NOT_FOUND);
      assert.equal(r.error?.details, MESSAGE);
      const md = r.status!.metadata;
      assert.deepEqual(md.get('x-why'), ['because']);
      assert.ok((md.get('x-why-bin')[0] as Buffer).equals(BIN));
      assert.ok((md.get('grpc-status-details-bin')[0] as Buffer).equals(DETAILS));
      assert.deepEqual(md.get('x-sidecar-flag'), [], 'the server\'s own answer, not one the sidecar made');
    });

    it('a trailers-only error stays one HEADERS frame with END_STREAM', async () => {
      const frames = await framesOfStream(mesh.port, 'fail');
      assert.deepEqual(frames.map((f) => [f.type, f.flags & 0x1]), [[FrameType.HEADERS, 1]]);
    });

    it('a normal answer: HEADERS, DATA, then trailers (HEADERS with END_STREAM)', async () => {
      const frames = await framesOfStream(mesh.port, 'ok');
      const kinds = frames.filter((f) => f.type !== FrameType.WINDOW_UPDATE).map((f) => [f.type, f.flags & 0x1]);
      assert.deepEqual(kinds[0], [FrameType.HEADERS, 0]);
      assert.deepEqual(kinds[kinds.length - 1], [FrameType.HEADERS, 1]);
      assert.ok(kinds.slice(1, -1).every(([t]) => t === FrameType.DATA));
    });
  });
}
