// gRPC deadlines and cancellation through two sidecars: grpc-timeout forwarded reduced by the time spent, a call past
// its deadline answered DEADLINE_EXCEEDED, and a cancel from either end reaching the other end at once.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { echoClient, grpc, startGrpcServer, unary, type EchoClient, type RunningGrpcServer } from '../helpers/grpc.js';
import { startMesh, type Mesh } from '../helpers/grpc-mesh.js';

const DELAY_MS = 300;

describe('gRPC deadlines through two sidecars', { timeout: 60_000 }, () => {
  let server: RunningGrpcServer;
  let mesh: Mesh;
  let client: EchoClient;
  let seenDeadline: number | undefined;
  let seenLeft: number | undefined;

  before(async () => {
    server = await startGrpcServer({
      Unary: (call, cb) => {
        const d = call.getDeadline();
        seenDeadline = d instanceof Date ? d.getTime() : d;
        seenLeft = seenDeadline - Date.now();
        if (call.request.toString() === 'slow') return void setTimeout(() => cb(null, Buffer.from('late')), 3000).unref();
        cb(null, Buffer.from('ok'));
      },
    });
    // The outbound route spends DELAY_MS before forwarding (a fault delay), so the budget visibly shrinks.
    mesh = await startMesh(server.address, 2, { route: `        fault: { delay: { duration: ${DELAY_MS}ms } }`, innerRoute: '' });
    client = echoClient(mesh.port);
  });

  after(async () => {
    client?.close();
    await mesh?.stop();
    await server?.close();
  });

  it('the server sees what is left of the client\'s deadline, not the whole of it', async () => {
    const deadline = Date.now() + 5000;
    const r = await unary(client, Buffer.from('ok'), new grpc.Metadata(), { deadline });
    assert.equal(r.error, null);
    assert.ok(seenLeft! <= 5000 - DELAY_MS + 20, `server had ${seenLeft} ms left`);
    assert.ok(seenLeft! > 3000, `server had ${seenLeft} ms left`);
    // Reduced by the time spent: the absolute deadline stays where the client put it (not pushed out by the delay).
    assert.ok(Math.abs(seenDeadline! - deadline) < 100, `server deadline off by ${seenDeadline! - deadline} ms`);
  });

  it('a call past its deadline: DEADLINE_EXCEEDED from the sidecar (flag UT, caller deadline), at the deadline', async () => {
    // node:http2 rather than grpc-js, whose client would give up by itself at its deadline and hide the sidecar's answer.
    const session = http2.connect(`http://127.0.0.1:${mesh.port}`);
    try {
      const started = Date.now();
      const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '800m' });
        req.on('response', resolve);
        req.on('error', reject);
        req.resume();
        const msg = Buffer.from('slow');
        const prefix = Buffer.alloc(5);
        prefix.writeUInt32BE(msg.length, 1);
        req.end(Buffer.concat([prefix, msg]));
      });
      const took = Date.now() - started;
      assert.equal(head['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED));
      assert.equal(head['x-sidecar-flag'], 'UT');
      assert.match(decodeURIComponent(String(head['grpc-message'])), /caller deadline, grpc-timeout/);
      assert.ok(took >= 700 && took < 1500, `answered after ${took} ms`);
    } finally {
      session.close();
    }
  });

  it('grpc-js: a call past its deadline ends DEADLINE_EXCEEDED at the deadline', async () => {
    const started = Date.now();
    const r = await unary(client, Buffer.from('slow'), new grpc.Metadata(), { deadline: Date.now() + 800 });
    assert.equal(r.error?.code, grpc.status.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - started < 1500);
  });
});

describe('gRPC cancellation through two sidecars', { timeout: 60_000 }, () => {
  let server: RunningGrpcServer;
  let mesh: Mesh;
  let client: EchoClient;
  let cancelledAt: number | undefined;

  before(async () => {
    server = await startGrpcServer({
      ServerStream: (call) => {
        call.write(Buffer.from('first'));
        call.on('cancelled', () => (cancelledAt = Date.now()));
      },
      Bidi: (call) => {
        call.on('data', (d: Buffer) => call.write(d));
        call.on('cancelled', () => (cancelledAt = Date.now()));
      },
    });
    mesh = await startMesh(server.address, 2);
    client = echoClient(mesh.port);
  });

  after(async () => {
    client?.close();
    await mesh?.stop();
    await server?.close();
  });

  for (const kind of ['ServerStream', 'Bidi'] as const) {
    it(`${kind}: the client cancels, the server sees the call cancelled at once`, async () => {
      cancelledAt = undefined;
      const call = kind === 'ServerStream'
        ? client.ServerStream(Buffer.from('x'), new grpc.Metadata(), { deadline: Date.now() + 20_000 })
        : client.Bidi(new grpc.Metadata(), { deadline: Date.now() + 20_000 });
      if (kind === 'Bidi') (call as grpc.ClientDuplexStream<Buffer, Buffer>).write(Buffer.from('first'));
      const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      call.on('error', () => {});
      await new Promise((resolve) => call.once('data', resolve));
      const at = Date.now();
      call.cancel();
      assert.equal((await status).code, grpc.status.CANCELLED);
      for (let i = 0; i < 100 && cancelledAt === undefined; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(cancelledAt !== undefined, 'the server saw the cancel');
      assert.ok(cancelledAt - at < 500, `the server saw it ${cancelledAt - at} ms later`);
    });
  }
});

describe('an app that resets its stream with CANCEL, through two sidecars', { timeout: 60_000 }, () => {
  let app: http2.Http2Server;
  let mesh: Mesh;
  let client: EchoClient;

  before(async () => {
    // A raw HTTP/2 app: answers the head and one message, then RST_STREAM CANCEL (grpc-js servers never reset so).
    app = http2.createServer();
    app.on('stream', (stream) => {
      stream.on('error', () => {});
      // waitForTrailers: without it node's close(CANCEL) would send END_STREAM first and RST_STREAM NO_ERROR after.
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      const msg = Buffer.from('first');
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(msg.length, 1);
      stream.write(Buffer.concat([prefix, msg]));
      setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), 200);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    mesh = await startMesh(`127.0.0.1:${(app.address() as AddressInfo).port}`, 2);
    client = echoClient(mesh.port);
  });

  after(async () => {
    client?.close();
    await mesh?.stop();
    await new Promise<void>((resolve) => app.close(() => resolve()));
  });

  it('the client sees CANCELLED, promptly, after the message that came before', async () => {
    const call = client.ServerStream(Buffer.from('x'), new grpc.Metadata(), { deadline: Date.now() + 20_000 });
    const got: string[] = [];
    call.on('data', (d: Buffer) => got.push(d.toString()));
    call.on('error', () => {});
    const started = Date.now();
    const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    assert.deepEqual(got, ['first']);
    assert.equal(status.code, grpc.status.CANCELLED, `status ${status.code}: ${status.details}`);
    assert.ok(Date.now() - started < 1000);
    // Both sidecars log the call as it ended: CANCELLED, cut by the upstream (UR).
    for (const sidecar of mesh.sidecars) {
      const [line] = await sidecar.waitForAccessLog(1);
      assert.equal(line!.grpc_status, grpc.status.CANCELLED);
      assert.equal(line!.response_flag, 'UR');
    }
  });
});
