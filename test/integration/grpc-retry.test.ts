// retry_on gRPC codes: a trailers-only UNAVAILABLE is retried (POST or not) until the call succeeds; a code not
// listed, and a call whose response had started streaming, are not.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { echoClient, grpc, startGrpcServer, unary, type EchoClient, type RunningGrpcServer } from '../helpers/grpc.js';
import { startMesh, type Mesh } from '../helpers/grpc-mesh.js';

for (const hops of [1, 2] as const) {
  describe(`gRPC retries through ${hops} sidecar${hops > 1 ? 's' : ''} (retry on the first)`, { timeout: 60_000 }, () => {
    let server: RunningGrpcServer;
    let mesh: Mesh;
    let client: EchoClient;
    /** Calls the server saw, by request text. */
    const calls = new Map<string, number>();
    const count = (key: string): number => {
      const n = (calls.get(key) ?? 0) + 1;
      calls.set(key, n);
      return n;
    };

    before(async () => {
      server = await startGrpcServer({
        Unary: (call, cb) => {
          const key = call.request.toString();
          const n = count(key);
          // "fail-N-CODE": the first N calls fail with CODE, trailers-only.
          const m = /^fail-(\d+)-(\d+)/.exec(key);
          if (m && n <= Number(m[1])) return cb({ code: Number(m[2]), details: `failing call ${n}` });
          cb(null, Buffer.from(`ok after ${n}`));
        },
        ServerStream: (call) => {
          count('stream');
          call.write(Buffer.from('first'));
          call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'after a message' });
        },
      });
      mesh = await startMesh(server.address, hops, {
        route: `        retry: { retry_on: [unavailable, resource-exhausted], max_retries: 3, backoff: { base_interval: 5ms, max_interval: 20ms } }`,
        ...(hops === 2 ? { innerRoute: '' } : {}),
      });
      client = echoClient(mesh.port);
    });

    after(async () => {
      client?.close();
      await mesh?.stop();
      await server?.close();
    });

    it('UNAVAILABLE twice, then OK: the client sees OK, the server saw 3 calls', async () => {
      const r = await unary(client, Buffer.from('fail-2-14-a'));
      assert.equal(r.error, null, r.error?.details);
      assert.equal(r.value?.toString(), 'ok after 3');
      assert.equal(calls.get('fail-2-14-a'), 3);
      const log = await mesh.sidecars[0]!.waitForAccessLog(1);
      const line = log.find((l) => l.path === '/test.Echo/Unary' && l.attempts === 3);
      assert.ok(line, `an access-log line with 3 attempts: ${JSON.stringify(log)}`);
    });

    it('RESOURCE_EXHAUSTED (listed too) is retried', async () => {
      const r = await unary(client, Buffer.from('fail-1-8-b'));
      assert.equal(r.error, null);
      assert.equal(calls.get('fail-1-8-b'), 2);
    });

    it('UNAVAILABLE every time: the last answer after 1 + max_retries calls, with the server\'s status', async () => {
      const r = await unary(client, Buffer.from('fail-9-14-c'));
      assert.equal(r.error?.code, grpc.status.UNAVAILABLE);
      assert.equal(r.error?.details, 'failing call 4');
      assert.equal(calls.get('fail-9-14-c'), 4);
      assert.equal(r.status?.metadata.get('x-sidecar-flag')[0], 'URX');
    });

    it('a code not listed (INTERNAL) is answered as is, after one call', async () => {
      const r = await unary(client, Buffer.from('fail-1-13-d'));
      assert.equal(r.error?.code, grpc.status.INTERNAL);
      assert.equal(calls.get('fail-1-13-d'), 1);
    });

    it('a stream that had started (a message, then UNAVAILABLE in the trailers) is not replayed', async () => {
      const call = client.ServerStream(Buffer.from('x'), new grpc.Metadata(), { deadline: Date.now() + 10_000 });
      const got: string[] = [];
      call.on('data', (d: Buffer) => got.push(d.toString()));
      call.on('error', () => {});
      const status = await new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      assert.equal(status.code, grpc.status.UNAVAILABLE);
      assert.deepEqual(got, ['first']);
      assert.equal(calls.get('stream'), 1);
    });
  });
}
