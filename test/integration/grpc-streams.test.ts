// The four gRPC call kinds through one sidecar and through two chained sidecars (h2c on every hop), with a real
// grpc-js client and server: every message arrives, in order, and the counts are exact.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { echoClient, grpc, startGrpcServer, unary, type EchoClient, type RunningGrpcServer } from '../helpers/grpc.js';
import { startMesh, type Mesh } from '../helpers/grpc-mesh.js';

const MESSAGES = 200;

function collect<T>(stream: NodeJS.ReadableStream & { on(e: 'status', l: (s: grpc.StatusObject) => void): unknown }): Promise<{ items: T[]; status: grpc.StatusObject }> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    let status: grpc.StatusObject | undefined;
    let ended = false;
    const done = (): void => {
      if (ended && status !== undefined) resolve({ items, status });
    };
    stream.on('data', (d: T) => items.push(d));
    stream.on('end', () => {
      ended = true;
      done();
    });
    stream.on('error', reject);
    stream.on('status', (s) => {
      status = s;
      done();
    });
  });
}

for (const hops of [1, 2] as const) {
  describe(`gRPC call kinds through ${hops} sidecar${hops > 1 ? 's' : ''}`, { timeout: 60_000 }, () => {
    let server: RunningGrpcServer;
    let mesh: Mesh;
    let client: EchoClient;

    before(async () => {
      server = await startGrpcServer({
        Unary: (call, cb) => cb(null, Buffer.concat([Buffer.from('echo:'), call.request])),
        ServerStream: (call) => {
          const n = Number(call.request.toString());
          for (let i = 0; i < n; i++) call.write(Buffer.from(`item-${i}`));
          call.end();
        },
        ClientStream: (call, cb) => {
          const got: string[] = [];
          call.on('data', (d: Buffer) => got.push(d.toString()));
          call.on('end', () => cb(null, Buffer.from(`${got.length}:${got.join(',')}`)));
        },
        Bidi: (call) => {
          call.on('data', (d: Buffer) => call.write(Buffer.concat([Buffer.from('re:'), d])));
          call.on('end', () => call.end());
        },
      });
      mesh = await startMesh(server.address, hops);
      client = echoClient(mesh.port);
    });

    after(async () => {
      client?.close();
      await mesh?.stop();
      await server?.close();
    });

    it('unary: the reply, for many calls at once', async () => {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => unary(client, Buffer.from(`m${i}`))));
      results.forEach((r, i) => {
        assert.equal(r.error, null);
        assert.equal(r.value?.toString(), `echo:m${i}`);
        assert.equal(r.status?.code, grpc.status.OK);
      });
    });

    it('unary: a large message (1 MiB) crosses intact', async () => {
      const big = Buffer.alloc(1024 * 1024, 7);
      big[0] = 1;
      big[big.length - 1] = 2;
      const r = await unary(client, big);
      assert.equal(r.error, null);
      assert.equal(r.value?.length, big.length + 5);
      assert.ok(r.value?.subarray(5).equals(big));
    });

    it('server streaming: every message, in order, then OK', async () => {
      const call = client.ServerStream(Buffer.from(String(MESSAGES)), new grpc.Metadata(), { deadline: Date.now() + 10_000 });
      const { items, status } = await collect<Buffer>(call);
      assert.equal(status.code, grpc.status.OK);
      assert.deepEqual(items.map(String), Array.from({ length: MESSAGES }, (_, i) => `item-${i}`));
    });

    it('client streaming: the server saw every message, in order', async () => {
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const call = client.ClientStream(new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, v) => (err ? reject(err) : resolve(v!)));
        for (let i = 0; i < MESSAGES; i++) call.write(Buffer.from(String(i)));
        call.end();
      });
      assert.equal(reply.toString(), `${MESSAGES}:${Array.from({ length: MESSAGES }, (_, i) => i).join(',')}`);
    });

    it('bidi streaming: each message answered in turn (ping-pong), then OK', async () => {
      const call = client.Bidi(new grpc.Metadata(), { deadline: Date.now() + 10_000 });
      const got: string[] = [];
      const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      // One at a time: the next message goes only after the answer to the last came back through every hop.
      for (let i = 0; i < 20; i++) {
        const answer = new Promise<string>((resolve) => call.once('data', (d: Buffer) => resolve(d.toString())));
        call.write(Buffer.from(`p${i}`));
        got.push(await answer);
      }
      call.end();
      call.on('data', () => assert.fail('no message after the end'));
      assert.equal((await status).code, grpc.status.OK);
      assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => `re:p${i}`));
    });

    it('bidi streaming: a burst of messages, all answered in order', async () => {
      const call = client.Bidi(new grpc.Metadata(), { deadline: Date.now() + 10_000 });
      const result = collect<Buffer>(call);
      for (let i = 0; i < MESSAGES; i++) call.write(Buffer.from(`b${i}`));
      call.end();
      const { items, status } = await result;
      assert.equal(status.code, grpc.status.OK);
      assert.deepEqual(items.map(String), Array.from({ length: MESSAGES }, (_, i) => `re:b${i}`));
    });
  });
}
