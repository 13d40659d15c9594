// End to end with real programs: an unmodified Java HttpClient (plain HTTP/1.1) → its sidecar → HTTP/2 over mutual
// TLS (SPIFFE identities, both sides verify) → the far sidecar → a Node.js HTTP/1.1 server. The client gets the
// server's exact bytes, 64 concurrent requests share at most two hop connections, and both access logs tell the same
// story (request id, identities).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CertFactory } from '../helpers/certs.js';
import { ROOT, startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor } from '../helpers/strict-net.js';
import { requireCommand } from '../helpers/system.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const API = 'spiffe://example.org/ns/default/sa/api';
const CONCURRENT = 64;
const CLIENT = path.join(ROOT, 'test/fixtures/java/MeshClient.java');
/** Source-file mode compiles on the fly (1-2 s on a quiet machine); the requests themselves take well under a second. */
const JAVA_TIMEOUT_MS = 60_000;

interface JavaResult {
  bytes: { status: number; length: number; sha256: string; contentType: string };
  echo: { status: number; sent: number; sentSha256: string; length: number; sha256: string; serverSha256: string };
  headers: { status: number; body: string; appHeader: string; multi: string; cookies: string };
  concurrent: Array<{ status: number; body: string }>;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The app: plain node:http, HTTP/1.1, no mesh code. /hold/* answers once CONCURRENT of them are open (or after 10 s). */
function startApp(blob: Buffer): Promise<{ server: http.Server; port: number; seen: http.IncomingHttpHeaders[]; peakHeld: () => number }> {
  const seen: http.IncomingHttpHeaders[] = [];
  let held: Array<() => void> = [];
  let open = 0;
  let peak = 0;
  const release = (): void => {
    for (const answer of held) answer();
    held = [];
  };
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    const url = req.url ?? '/';
    if (url === '/bytes') {
      // Chunked, in uneven pieces: the body streams through both sidecars without a length.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let at = 0; at < blob.length; at += 10_007) res.write(blob.subarray(at, at + 10_007));
      return void res.end();
    }
    if (url === '/echo') {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        const body = Buffer.concat(parts);
        res.writeHead(200, { 'content-type': String(req.headers['content-type']), 'x-received-sha256': sha256(body) });
        res.end(body);
      });
      return;
    }
    if (url.startsWith('/headers')) {
      res.setHeader('x-app-header', 'from-node');
      res.setHeader('x-multi', ['one', 'two']);
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ url, headers: req.headers }));
    }
    if (url.startsWith('/hold/')) {
      open++;
      peak = Math.max(peak, open);
      held.push(() => {
        open--;
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`held ${url}`);
      });
      if (held.length >= CONCURRENT) release();
      else setTimeout(release, 10_000).unref();
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port, seen, peakHeld: () => peak })),
  );
}

/** A TCP pass-through between the two sidecars that counts the connections the hop opens. */
function startCountingPipe(targetPort: number): Promise<{ server: net.Server; port: number; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((down) => {
    connections++;
    const up = net.connect(targetPort, '127.0.0.1');
    down.pipe(up).pipe(down);
    const cut = (): void => {
      down.destroy();
      up.destroy();
    };
    down.on('error', cut).on('close', cut);
    up.on('error', cut).on('close', cut);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port, connections: () => connections })));
}

function runJava(base: string): Promise<JavaResult> {
  return new Promise((resolve, reject) => {
    // Client JIT only and a small heap: the JVM starts faster, which is what bounds this test.
    const args = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-Xss512k', CLIENT, base, String(CONCURRENT)];
    execFile('java', args, { encoding: 'utf8', timeout: JAVA_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`java MeshClient failed: ${err.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout) as JavaResult);
      } catch {
        reject(new Error(`java MeshClient printed no JSON:\n${stdout}\n${stderr}`));
      }
    });
  });
}

describe('end to end: Java HttpClient → sidecar → h2 + mTLS → sidecar → Node.js server', () => {
  const blob = randomBytes(300 * 1024 + 13);
  let app: Awaited<ReturnType<typeof startApp>>;
  let pipe: Awaited<ReturnType<typeof startCountingPipe>>;
  let inbound: RunningSidecar;
  let outbound: RunningSidecar;
  let ca: { certFile: string };
  let result: JavaResult;
  let pipeConnectionsAfterJava = 0;

  before(async () => {
    requireCommand('java', 'default-jdk-headless');
    const certs = new CertFactory();
    const authority = await certs.ca('mesh-ca', 'example.org');
    ca = authority;
    const web = await certs.leaf(authority, { identity: WEB, name: 'web' });
    const api = await certs.leaf(authority, { identity: API, name: 'api' });
    app = await startApp(blob);
    inbound = await startSidecar(`
listeners:
  - name: in
    port: 0
    tls: { cert: ${api.certFile}, key: ${api.keyFile}, client_ca: ${authority.certFile}, require_client_cert: true, allowed_identities: ["${WEB}"] }
    routes: [{ name: app, match: { prefix: / }, cluster: app }]
clusters:
  - { name: app, endpoints: ["127.0.0.1:${app.port}"] }
`);
    pipe = await startCountingPipe(inbound.ports.in!);
    outbound = await startSidecar(`
listeners:
  - name: out
    port: 0
    hop_marker: ignore
    routes: [{ name: mesh, match: { prefix: / }, cluster: api }]
clusters:
  - name: api
    peer: sidecar
    endpoints: ["127.0.0.1:${pipe.port}"]
    tls: { ca: ${authority.certFile}, cert: ${web.certFile}, key: ${web.keyFile}, expected_identities: ["${API}"] }
`);
    result = await runJava(`http://127.0.0.1:${outbound.ports.out}`);
    pipeConnectionsAfterJava = pipe.connections();
  }, { timeout: JAVA_TIMEOUT_MS + 30_000 });

  after(async () => {
    await outbound?.stop();
    pipe?.server.close();
    await inbound?.stop();
    app?.server.close();
  });

  it('the client gets exactly the server bytes: a streamed binary body and an echoed POST', () => {
    assert.equal(result.bytes.status, 200);
    assert.equal(result.bytes.contentType, 'application/octet-stream');
    assert.equal(result.bytes.length, blob.length);
    assert.equal(result.bytes.sha256, sha256(blob));
    assert.equal(result.echo.status, 200);
    assert.equal(result.echo.length, result.echo.sent);
    assert.equal(result.echo.serverSha256, result.echo.sentSha256, 'the app received the uploaded bytes');
    assert.equal(result.echo.sha256, result.echo.sentSha256, 'the client received them back');
  });

  it('request headers reach the app and response headers (a repeated one too) reach the client', () => {
    assert.equal(result.headers.status, 200);
    assert.equal(result.headers.appHeader, 'from-node');
    // A repeated list-valued field may be combined into one line (RFC 9110 5.3), as HTTP/2 to HTTP/1.1 does; Set-Cookie never.
    assert.deepEqual(result.headers.multi.split(/\s*[,|]\s*/), ['one', 'two']);
    assert.equal(result.headers.cookies, 'a=1; Path=/|b=2; Path=/');
    const echoed = JSON.parse(result.headers.body) as { url: string; headers: Record<string, string> };
    assert.equal(echoed.url, '/headers?q=1');
    assert.equal(echoed.headers['x-client-trace'], 'java-42');
    assert.equal(echoed.headers.accept, 'application/json');
    assert.match(echoed.headers['user-agent'] ?? '', /^Java-http-client\//);
  });

  it(`${CONCURRENT} concurrent client requests crossed the hop together on at most two HTTP/2 connections`, () => {
    assert.equal(result.concurrent.length, CONCURRENT);
    result.concurrent.forEach((r, i) => {
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, `held /hold/${i}`);
    });
    assert.equal(app.peakHeld(), CONCURRENT, 'the app held all of them open at once, so they were in flight together');
    assert.ok(pipeConnectionsAfterJava >= 1 && pipeConnectionsAfterJava <= 2, `TCP connections across the hop for ${CONCURRENT + 3} requests: ${pipeConnectionsAfterJava}`);
  });

  it('the hop is mutually authenticated: the inbound sidecar refuses a client without a certificate', { timeout: 15_000 }, async () => {
    const before = app.seen.length;
    const outcome = await new Promise<string>((resolve) => {
      const session = http2.connect(`https://127.0.0.1:${inbound.ports.in}`, { ca: readFileSync(ca.certFile), checkServerIdentity: () => undefined });
      const done = (what: string): void => {
        session.destroy();
        resolve(what);
      };
      session.on('error', (e: Error) => done(`error: ${e.message}`));
      session.on('close', () => done('closed'));
      const req = session.request({ ':path': '/headers', ':method': 'GET' });
      req.on('response', (h) => done(`response ${h[':status']}`));
      req.on('error', (e: Error) => done(`stream error: ${e.message}`));
      req.end();
      setTimeout(() => done('timeout'), 10_000).unref();
    });
    assert.doesNotMatch(outcome, /^response|^timeout/, outcome);
    assert.equal(app.seen.length, before, 'the app saw nothing');
    const metrics = await (await fetch(`http://127.0.0.1:${inbound.adminPort}/metrics`)).text();
    assert.match(metrics, /sidecar_tls_handshake_failures_total\{listener="in",reason="no_client_cert"\} [1-9]/);
    assert.match(metrics, /sidecar_downstream_transport_connections_total\{listener="in",transport="mtls"\} [1-9]/);
  });

  it('both access logs share the request id; the inbound one shows the caller identity and the outbound one the upstream identity', async () => {
    const out = await accessLogFor(outbound, '/headers?q=1');
    const inn = await accessLogFor(inbound, '/headers?q=1');
    assert.equal(typeof out.request_id, 'string');
    assert.equal(inn.request_id, out.request_id);
    const echoed = JSON.parse(result.headers.body) as { headers: Record<string, string> };
    assert.equal(echoed.headers['x-request-id'], out.request_id, 'the app got the same id');
    assert.equal(out.protocol, 'HTTP/1.1');
    assert.equal(inn.protocol, 'HTTP/2');
    assert.equal(inn.peer_identity, WEB);
    assert.equal(out.upstream_identity, API);
  });
});
