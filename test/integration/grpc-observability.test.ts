// Per-method gRPC metrics and the access log's grpc_status, from real grpc-js calls: codes from the trailers, from a
// trailers-only head, from the sidecar's own answer, and CANCELLED for a call the client gave up; nothing for HTTP.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { metricsText } from '../helpers/admin.js';
import { echoClient, grpc, startGrpcServer, unary, type EchoClient, type RunningGrpcServer } from '../helpers/grpc.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';

describe('gRPC metrics and access log', { timeout: 60_000 }, () => {
  let server: RunningGrpcServer;
  let sidecar: RunningSidecar;
  let client: EchoClient;

  before(async () => {
    server = await startGrpcServer({
      Unary: (call, cb) => (call.request.toString() === 'missing' ? cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' }) : cb(null, call.request)),
      ServerStream: (call) => {
        call.write(Buffer.from('one'));
        if (call.request.toString() === 'hang') return;
        call.end();
      },
    });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { name: echo, match: { prefix: /test.Echo/ }, cluster: app }
      - { name: web, match: { prefix: /web }, direct_response: { status: 200, body: hi } }
clusters:
  - { name: app, protocol: h2c, endpoints: ["${server.address}"] }
`);
    client = echoClient(sidecar.ports.in!);
    for (let i = 0; i < 3; i++) assert.equal((await unary(client, Buffer.from('hi'))).error, null);
    assert.equal((await unary(client, Buffer.from('missing'))).error?.code, grpc.status.NOT_FOUND);
    await new Promise<void>((resolve, reject) => {
      const call = client.ServerStream(Buffer.from('x'), new grpc.Metadata(), {});
      call.on('data', () => {});
      call.on('status', (s: grpc.StatusObject) => (s.code === 0 ? resolve() : reject(new Error(s.details))));
    });
    // A call the client cancels after its first message.
    await new Promise<void>((resolve) => {
      const call = client.ServerStream(Buffer.from('hang'), new grpc.Metadata(), {});
      call.on('error', () => {});
      call.once('data', () => call.cancel());
      call.on('status', () => resolve());
    });
    // No route: the sidecar's own UNIMPLEMENTED.
    const other = new (grpc.makeGenericClientConstructor({ M: { path: '/other.Svc/M', requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b } }, 'other.Svc'))(`127.0.0.1:${sidecar.ports.in!}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { M: (r: Buffer, cb: (e: grpc.ServiceError | null) => void) => void };
    await new Promise<void>((resolve) => other.M(Buffer.from('x'), (e) => {
      assert.equal(e?.code, grpc.status.UNIMPLEMENTED);
      resolve();
    }));
    other.close();
    // Plain HTTP.
    await new Promise<void>((resolve, reject) => http.get(`http://127.0.0.1:${sidecar.ports.in!}/web`, (res) => res.resume().on('end', resolve)).on('error', reject));
  });

  after(async () => {
    client?.close();
    await sidecar?.stop();
    await server?.close();
  });

  it('counts calls by service, method and code', async () => {
    const text = await metricsText(sidecar.adminPort);
    const count = (labels: string): number => Number(new RegExp(`^sidecar_grpc_requests_total\\{${labels.replace(/[.]/g, '\\.')}\\} (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
    assert.equal(count('listener="in",route="echo",grpc_service="test.Echo",grpc_method="Unary",grpc_code="OK"'), 3, text);
    assert.equal(count('listener="in",route="echo",grpc_service="test.Echo",grpc_method="Unary",grpc_code="NOT_FOUND"'), 1);
    assert.equal(count('listener="in",route="echo",grpc_service="test.Echo",grpc_method="ServerStream",grpc_code="OK"'), 1);
    assert.equal(count('listener="in",route="echo",grpc_service="test.Echo",grpc_method="ServerStream",grpc_code="CANCELLED"'), 1);
    assert.equal(count('listener="in",route="",grpc_service="other.Svc",grpc_method="M",grpc_code="UNIMPLEMENTED"'), 1);
    assert.doesNotMatch(text, /sidecar_grpc_requests_total\{[^}]*route="web"/);
    assert.match(text, /^sidecar_grpc_request_duration_seconds_count\{listener="in",route="echo",grpc_service="test\.Echo",grpc_method="Unary"\} 4$/m);
  });

  it('access log: grpc_status for gRPC calls, null for plain HTTP', async () => {
    const log = await sidecar.waitForAccessLog(8);
    const statuses = log.filter((l) => String(l.path).startsWith('/test.Echo/Unary')).map((l) => l.grpc_status);
    assert.deepEqual(statuses.sort(), [0, 0, 0, 5]);
    assert.deepEqual(log.filter((l) => l.path === '/test.Echo/ServerStream').map((l) => l.grpc_status).sort(), [0, 1]);
    assert.equal(log.find((l) => l.path === '/other.Svc/M')?.grpc_status, 12);
    assert.equal(log.find((l) => l.path === '/web')?.grpc_status, null);
    assert.ok(log.every((l) => 'grpc_status' in l));
  });
});
