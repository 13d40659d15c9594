// End to end with real programs: a Python grpcio client (Debian's python3-grpcio) → its sidecar → h2c hop → the far
// sidecar → a grpc-js server. All four streaming kinds, metadata both ways, a deadline, a cancellation the server
// sees, and a trailers-only error whose status, details and trailing metadata arrive intact.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ROOT, startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { waitUntil } from '../helpers/strict-net.js';
import { SYSTEM_PYTHON, requirePythonModule } from '../helpers/system.js';

const CLIENT = path.join(ROOT, 'test/fixtures/python/grpc_client.py');
const PYTHON_TIMEOUT_MS = 45_000;
const ERROR_DETAILS = 'widget 42 not found: ünïcode, 100% "quoted"';

interface Status {
  code: string;
  details: string;
  trailing: Record<string, string>;
}
interface PythonResult {
  unary: { reply: string; initial: Record<string, string>; trailing: Record<string, string>; code: string };
  server_stream: string[];
  client_stream: string;
  bidi: string[];
  deadline: Status & { elapsed: number };
  cancel: { first: string; code: string };
  error: Status & { initial: Record<string, string> };
}

const bytes = { serialize: (b: Buffer): Buffer => b, deserialize: (b: Buffer): Buffer => b };
const def = (name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> => ({
  path: `/e2e.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: bytes.serialize,
  requestDeserialize: bytes.deserialize,
  responseSerialize: bytes.serialize,
  responseDeserialize: bytes.deserialize,
  originalName: name,
});
const SERVICE: grpc.ServiceDefinition = {
  Unary: def('Unary', false, false),
  ServerStream: def('ServerStream', false, true),
  ClientStream: def('ClientStream', true, false),
  Bidi: def('Bidi', true, true),
};

/** What the server observed, for the assertions the client cannot make. */
interface Observed {
  unaryMetadata?: grpc.Metadata;
  slowCancelled: boolean;
  foreverCancelled: boolean;
  foreverSent: number;
}

async function startGrpcServer(observed: Observed): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(SERVICE, {
    Unary(call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      const text = call.request.toString('latin1');
      if (text === 'slow') {
        call.on('cancelled', () => (observed.slowCancelled = true));
        setTimeout(() => callback(null, Buffer.from('too late')), 3000).unref();
        return;
      }
      if (text === 'fail') {
        const trailing = new grpc.Metadata();
        trailing.set('x-reason', 'missing');
        trailing.set('x-code-bin', Buffer.from([0xde, 0xad]));
        return callback({ code: grpc.status.NOT_FOUND, details: ERROR_DETAILS, metadata: trailing });
      }
      observed.unaryMetadata = call.metadata;
      const initial = new grpc.Metadata();
      initial.set('x-initial', 'hi');
      call.sendMetadata(initial);
      const trailing = new grpc.Metadata();
      trailing.set('x-trailing', 'bye');
      trailing.set('x-trailing-bin', Buffer.from([0x00, 0xff, 0x10]));
      callback(null, Buffer.concat([Buffer.from('echo:'), call.request]), trailing);
    },
    ServerStream(call: grpc.ServerWritableStream<Buffer, Buffer>) {
      const text = call.request.toString();
      if (text === 'forever') {
        call.on('cancelled', () => (observed.foreverCancelled = true));
        const tick = setInterval(() => {
          if (call.cancelled) return clearInterval(tick);
          observed.foreverSent++;
          call.write(Buffer.from(`tick ${observed.foreverSent}`));
        }, 50);
        call.on('cancelled', () => clearInterval(tick));
        return;
      }
      for (let i = 1; i <= Number(text); i++) call.write(Buffer.from(`message ${i} of ${text}`));
      call.end();
    },
    ClientStream(call: grpc.ServerReadableStream<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) {
      const got: string[] = [];
      call.on('data', (m: Buffer) => got.push(m.toString()));
      call.on('end', () => callback(null, Buffer.from(`${got.length} messages: ${got.join('+')}`)));
    },
    Bidi(call: grpc.ServerDuplexStream<Buffer, Buffer>) {
      call.on('data', (m: Buffer) => call.write(Buffer.from(m.toString().toUpperCase())));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, port };
}

function runPython(target: string): Promise<PythonResult> {
  return new Promise((resolve, reject) => {
    execFile(SYSTEM_PYTHON, [CLIENT, target], { encoding: 'utf8', timeout: PYTHON_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`grpc_client.py failed: ${err.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout) as PythonResult);
      } catch {
        reject(new Error(`grpc_client.py printed no JSON:\n${stdout}\n${stderr}`));
      }
    });
  });
}

describe('end to end: Python grpcio → sidecar → h2c → sidecar → grpc-js server', () => {
  const observed: Observed = { slowCancelled: false, foreverCancelled: false, foreverSent: 0 };
  let app: { server: grpc.Server; port: number };
  let inbound: RunningSidecar;
  let outbound: RunningSidecar;
  let result: PythonResult;

  before(async () => {
    requirePythonModule('grpc', 'python3-grpcio');
    app = await startGrpcServer(observed);
    inbound = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes: [{ name: app, match: { prefix: /e2e.Echo/ }, cluster: app }]
clusters:
  - { name: app, protocol: h2c, endpoints: ["127.0.0.1:${app.port}"] }
`);
    outbound = await startSidecar(`
listeners:
  - name: out
    port: 0
    routes: [{ name: echo, match: { prefix: /e2e.Echo/ }, cluster: echo }]
clusters:
  - { name: echo, protocol: h2c, endpoints: ["127.0.0.1:${inbound.ports.in}"] }
`);
    result = await runPython(`127.0.0.1:${outbound.ports.out}`);
  }, { timeout: PYTHON_TIMEOUT_MS + 30_000 });

  after(async () => {
    await outbound?.stop();
    await inbound?.stop();
    app?.server.forceShutdown();
  });

  it('unary: bytes and metadata (ASCII and -bin, initial and trailing) cross both sidecars both ways', () => {
    assert.equal(result.unary.code, 'OK');
    assert.equal(result.unary.reply, Buffer.concat([Buffer.from('echo:'), Buffer.from('hello \x00\xff', 'latin1')]).toString('hex'));
    assert.equal(result.unary.initial['x-initial'], 'hi');
    assert.equal(result.unary.trailing['x-trailing'], 'bye');
    assert.equal(result.unary.trailing['x-trailing-bin'], '00ff10');
    const md = observed.unaryMetadata!;
    assert.deepEqual(md.get('x-caller'), ['python']);
    assert.deepEqual(md.get('x-blob-bin'), [Buffer.from([0x01, 0x02, 0xfe])]);
  });

  it('server streaming, client streaming and bidirectional streaming', () => {
    assert.deepEqual(result.server_stream, [1, 2, 3, 4, 5].map((i) => `message ${i} of 5`));
    assert.equal(result.client_stream, '3 messages: a+bb+ccc');
    assert.deepEqual(result.bidi, ['PING', 'PONG', 'DONE']);
  });

  it('a deadline shorter than the server takes is DEADLINE_EXCEEDED at about the deadline; the server sees the call end', async () => {
    assert.equal(result.deadline.code, 'DEADLINE_EXCEEDED', JSON.stringify(result.deadline));
    assert.ok(result.deadline.elapsed >= 0.45 && result.deadline.elapsed < 2.5, `answered after ${result.deadline.elapsed} s (deadline 0.5 s)`);
    assert.ok(await waitUntil(() => observed.slowCancelled, 3000), 'the server saw the expired call cancelled');
  });

  it('a cancelled call is cancelled at the server, through both sidecars', async () => {
    assert.equal(result.cancel.first, 'tick 1');
    assert.equal(result.cancel.code, 'CANCELLED');
    assert.ok(await waitUntil(() => observed.foreverCancelled, 3000), 'the server observed the cancellation');
    const sent = observed.foreverSent;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(observed.foreverSent, sent, 'the server stopped sending');
  });

  it('a trailers-only error keeps its status code, details and trailing metadata', () => {
    // The upstream's trailers-only HEADERS (END_STREAM) must cross both sidecars as one HEADERS frame: relayed as
    // HEADERS then an empty DATA, grpcio finds no trailers and reports UNKNOWN "Stream removed".
    assert.deepEqual([result.error.code, result.error.details, result.error.trailing['x-reason'], result.error.trailing['x-code-bin']], ['NOT_FOUND', ERROR_DETAILS, 'missing', 'dead'], JSON.stringify(result.error));
  });
});
