// Failures the sidecar generates for a gRPC request are gRPC answers by default, read by a real grpc-js client: the
// status code, the cause and flag in the details, and x-sidecar-flag / x-sidecar-error as trailing metadata.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { echoClient, grpc, startGrpcServer, unary, type EchoClient, type RunningGrpcServer, type UnaryResult } from '../helpers/grpc.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startMesh, type Mesh } from '../helpers/grpc-mesh.js';

const meta = (r: UnaryResult, key: string): string | undefined => r.status?.metadata.get(key)[0]?.toString();

function assertAnswer(r: UnaryResult, code: grpc.status, flag: string, cause: RegExp): void {
  assert.equal(r.error?.code, code, `code ${r.error?.code} (${r.error?.details})`);
  assert.equal(meta(r, 'x-sidecar-flag'), flag);
  assert.match(meta(r, 'x-sidecar-error') ?? '', cause);
  assert.match(r.error!.details, cause);
  assert.ok(r.error!.details.includes(`[${flag}`), `details name the flag: ${r.error!.details}`);
}

describe('gRPC-shaped local answers, by default', { timeout: 60_000 }, () => {
  let server: RunningGrpcServer;
  let sidecar: RunningSidecar;
  let release: () => void = () => {};
  let holding = false;
  const clients: EchoClient[] = [];
  const client = (listener: string): EchoClient => {
    const c = echoClient(sidecar.ports[listener]!);
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await startGrpcServer({
      Unary: (call, cb) => {
        const mode = call.request.toString();
        if (mode === 'slow') return void setTimeout(() => cb(null, Buffer.from('late')), 2000).unref();
        if (mode === 'hold') {
          holding = true;
          release = () => cb(null, Buffer.from('held'));
          return;
        }
        cb(null, Buffer.from('ok'));
      },
    });
    sidecar = await startSidecar(`
listeners:
  - name: refused
    port: 0
    routes: [{ match: { prefix: / }, cluster: nothing }]
  - name: timeout
    port: 0
    routes: [{ match: { prefix: / }, cluster: app, timeout: 300ms }]
  - name: breaker
    port: 0
    routes: [{ match: { prefix: / }, cluster: small }]
  - name: unrouted
    port: 0
    routes: [{ match: { prefix: /other.Service/ }, cluster: app }]
  - name: denied
    port: 0
    routes: [{ match: { prefix: / }, cluster: app, fault: { abort: { status: 403 } } }]
  - name: text
    port: 0
    grpc_local_answers: false
    routes: [{ match: { prefix: / }, cluster: nothing }]
clusters:
  - { name: nothing, protocol: h2c, endpoints: ["127.0.0.1:1"], connect_timeout: 1s }
  - { name: app, protocol: h2c, endpoints: ["${server.address}"] }
  - name: small
    protocol: h2c
    endpoints: ["${server.address}"]
    circuit_breakers: { max_requests: 1 }
`);
  });

  after(async () => {
    release();
    for (const c of clients) c.close();
    await sidecar?.stop();
    await server?.close();
  });

  it('refused upstream: UNAVAILABLE, flag UF', async () => {
    assertAnswer(await unary(client('refused'), Buffer.from('x')), grpc.status.UNAVAILABLE, 'UF', /refused/);
  });

  it('route timeout: DEADLINE_EXCEEDED, flag UT (the client\'s own deadline is later)', async () => {
    const started = Date.now();
    const r = await unary(client('timeout'), Buffer.from('slow'));
    assertAnswer(r, grpc.status.DEADLINE_EXCEEDED, 'UT', /timeout after 300ms/);
    assert.ok(Date.now() - started < 1500, 'answered at the route timeout');
  });

  it('breaker overflow: UNAVAILABLE with a message, flag UO', async () => {
    const c = client('breaker');
    const held = unary(c, Buffer.from('hold'));
    // Wait until the first call is at the server (holding the one slot).
    for (let i = 0; i < 200 && !holding; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(holding, 'the first call reached the server');
    const r = await unary(c, Buffer.from('x'));
    assertAnswer(r, grpc.status.UNAVAILABLE, 'UO', /max_requests/);
    release();
    assert.equal((await held).value?.toString(), 'held');
  });

  it('no route: UNIMPLEMENTED, flag NR', async () => {
    assertAnswer(await unary(client('unrouted'), Buffer.from('x')), grpc.status.UNIMPLEMENTED, 'NR', /no route/);
  });

  it('denied (a fault abort with 403): PERMISSION_DENIED, flag FI', async () => {
    assertAnswer(await unary(client('denied'), Buffer.from('x')), grpc.status.PERMISSION_DENIED, 'FI', /fault/);
  });

  it('grpc_local_answers: false keeps the HTTP status and text body (grpc-js maps the 503 itself, no sidecar metadata)', async () => {
    const r = await unary(client('text'), Buffer.from('x'));
    assert.equal(r.error?.code, grpc.status.UNAVAILABLE);
    assert.match(r.error!.details, /HTTP status code 503/);
  });
});

describe('a gRPC answer made by the inbound sidecar crosses the outbound one intact', { timeout: 30_000 }, () => {
  let mesh: Mesh;
  let client: EchoClient;

  before(async () => {
    mesh = await startMesh('127.0.0.1:1', 2, { innerCluster: '    connect_timeout: 1s' });
    client = echoClient(mesh.port);
  });

  after(async () => {
    client?.close();
    await mesh?.stop();
  });

  it('UNAVAILABLE with the inbound sidecar\'s flag and cause', async () => {
    const r = await unary(client, Buffer.from('x'));
    assertAnswer(r, grpc.status.UNAVAILABLE, 'UF', /refused by 127\.0\.0\.1:1/);
  });
});
