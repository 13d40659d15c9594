// Inbound TLS with real clients: ALPN h2 and http/1.1 on one port, SNI picks the certificate, client certificates
// give a peer identity (access log, forwarded header, never taken from the client), bad certificates are refused at
// the handshake with a counted reason, plaintext gets a clear 400, and openssl confirms TLS 1.2/1.3 only.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { CertFactory, daysFromNow, type Ca, type Leaf } from '../helpers/certs.js';
import { curl, parseCurlI, rawRequest } from '../helpers/client.js';
import { metricsText } from '../helpers/admin.js';
import { accessLogFor } from '../helpers/strict-net.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const ID = 'spiffe://example.org/ns/default/sa/web';

function openssl(args: string[], input = 'Q\n'): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const p = execFile('openssl', args, { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) || 1 : 0, out: stdout + stderr }),
    );
    p.stdin?.end(input);
  });
}

/** One TLS connection: what the server presented, or the error. */
function handshake(port: number, o: tls.ConnectionOptions): Promise<{ cert?: tls.PeerCertificate; alpn?: string | false | null; error?: string; closedAfter?: boolean }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ...o }, () => {
      const cert = s.getPeerCertificate();
      const alpn = s.alpnProtocol;
      s.end();
      resolve({ cert, alpn });
    });
    s.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
  });
}

describe('TLS listener', () => {
  let certs: CertFactory;
  let ca: Ca;
  let otherCa: Ca;
  let server: Leaf;
  let wild: Leaf;
  let client: Leaf;
  let upstream: TestUpstream;
  let sidecar: RunningSidecar;
  let port: number;

  before(async () => {
    certs = new CertFactory();
    ca = await certs.ca('ca');
    otherCa = await certs.ca('other');
    server = await certs.leaf(ca, { dns: ['localhost', 'api.example.com'], name: 'server' });
    wild = await certs.leaf(ca, { dns: ['*.wild.example.com'], name: 'wild' });
    client = await certs.leaf(ca, { identity: ID, name: 'client' });
    upstream = await startUpstream();
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    tls:
      cert: ${server.certFile}
      key: ${server.keyFile}
      sni: [{ cert: ${wild.certFile}, key: ${wild.keyFile} }]
      client_ca: ${ca.certFile}
      forward_identity_header: x-peer-identity
      handshake_timeout: 1s
    routes: [{ name: all, match: { prefix: / }, cluster: app }]
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
`);
    port = sidecar.ports.in!;
  });
  after(async () => {
    await sidecar?.stop();
    await upstream?.close();
  });

  it('serves HTTP/1.1 over TLS to curl (scheme https, X-Forwarded-Proto https)', async () => {
    const r = await curl(['-i', '--http1.1', '--cacert', ca.certFile, '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/h1`]);
    assert.equal(r.code, 0, r.stderr);
    const res = parseCurlI(r.stdout);
    assert.equal(res.status, 200);
    const seen = upstream.requests.at(-1)!;
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-peer-identity'], undefined);
  });

  it('serves HTTP/2 over TLS by ALPN on the same port (curl --http2 and node:http2)', async () => {
    const r = await curl(['-i', '--http2', '--cacert', ca.certFile, '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/h2`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/2 200/);
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca: readFileSync(ca.certFile), servername: 'localhost' });
    const status = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ':path': '/node-h2' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.resume();
      req.end();
    });
    session.close();
    assert.equal(status, 200);
    assert.equal((await accessLogFor(sidecar, '/node-h2')).protocol, 'HTTP/2');
    assert.equal(upstream.requests.at(-1)!.headers['x-forwarded-proto'], 'https');
  });

  it('picks the certificate by SNI: exact name, *.wildcard, and the default for others', async () => {
    const caPem = readFileSync(ca.certFile);
    const exact = await handshake(port, { servername: 'api.example.com', ca: caPem });
    assert.equal(exact.cert?.serialNumber, server.serial);
    const w = await handshake(port, { servername: 'x.wild.example.com', ca: caPem });
    assert.equal(w.cert?.serialNumber, wild.serial);
    assert.equal(w.alpn, false);
    // Two labels under the wildcard do not match it: the default certificate is served (and fails the name check).
    const deep = await handshake(port, { servername: 'a.b.wild.example.com', ca: caPem, checkServerIdentity: () => undefined });
    assert.equal(deep.cert?.serialNumber, server.serial);
    const h2 = await handshake(port, { servername: 'localhost', ca: caPem, ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(h2.alpn, 'h2');
  });

  it('passes the verified client identity to the access log and the app header; a client-sent copy is removed', async () => {
    const r = await curl([
      '-i', '--cacert', ca.certFile, '--cert', client.certFile, '--key', client.keyFile,
      '-H', 'x-peer-identity: spiffe://example.org/ns/evil/sa/forged',
      '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/mtls`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseCurlI(r.stdout).status, 200);
    const seen = upstream.requests.at(-1)!;
    assert.deepEqual(seen.rawHeaders.filter((_, i, a) => i % 2 === 0 && a[i]!.toLowerCase() === 'x-peer-identity').length, 1);
    assert.equal(seen.headers['x-peer-identity'], ID);
    assert.equal((await accessLogFor(sidecar, '/mtls')).peer_identity, ID);
    // Without a client certificate the forged header still never reaches the app.
    const anon = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', ca.certFile, '-H', 'x-peer-identity: forged', '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/anon`]);
    assert.equal(anon.stdout, '200');
    assert.equal(upstream.requests.at(-1)!.headers['x-peer-identity'], undefined);
  });

  it('refuses expired, not-yet-valid, wrong-CA and self-signed client certificates, counted by reason, and keeps serving', async () => {
    const cases: Array<[string, Leaf]> = [
      ['expired', await certs.leaf(ca, { identity: ID, notBefore: daysFromNow(-10), notAfter: daysFromNow(-1) })],
      ['not_yet_valid', await certs.leaf(ca, { identity: ID, notBefore: daysFromNow(1), notAfter: daysFromNow(5) })],
      ['unknown_ca', await certs.leaf(otherCa, { identity: ID })],
      ['self_signed', await certs.leaf(ca, { identity: ID, selfSigned: true })],
    ];
    for (const [reason, leaf] of cases) {
      const r = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', ca.certFile, '--cert', leaf.certFile, '--key', leaf.keyFile, '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/refused-${reason}`]);
      assert.notEqual(r.code, 0, `${reason}: curl should fail, got ${r.stdout}`);
    }
    const ok = await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', ca.certFile, '--cert', client.certFile, '--key', client.keyFile, '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/still-ok`]);
    assert.equal(ok.stdout, '200');
    const metrics = await metricsText(sidecar.adminPort);
    for (const [reason] of cases) assert.match(metrics, new RegExp(`sidecar_tls_handshake_failures_total\\{listener="in",reason="${reason}"\\} 1`), reason);
    assert.match(sidecar.stderr(), /TLS connection refused: client certificate refused/);
    assert.equal(sidecar.accessLog().filter((l) => String(l.path).startsWith('/refused')).length, 0);
  });

  it('answers plaintext HTTP on the TLS port with 400 "this port expects TLS" and closes', async () => {
    const r = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 2000);
    assert.match(r.data, /^HTTP\/1\.1 400 /);
    assert.match(r.data, /x-sidecar-error: this port expects TLS/);
    assert.ok(r.closed);
  });

  it('cuts a handshake that stalls after handshake_timeout', async () => {
    const t0 = Date.now();
    const r = await rawRequest(port, Buffer.from([0x16, 0x03, 0x01]), 4000);
    assert.ok(r.closed);
    assert.ok(Date.now() - t0 < 3500, `closed after ${Date.now() - t0} ms`);
  });

  it('accepts TLS 1.2 and 1.3 and refuses 1.0 and 1.1 (openssl s_client)', async () => {
    const base = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', ca.certFile];
    const v13 = await openssl([...base, '-tls1_3']);
    assert.match(v13.out, /New, TLSv1\.3, Cipher is TLS_/);
    const v12 = await openssl([...base, '-tls1_2']);
    assert.match(v12.out, /New, TLSv1\.2, Cipher is ECDHE-/);
    for (const old of ['-tls1', '-tls1_1']) {
      const r = await openssl([...base, old, '-cipher', 'DEFAULT@SECLEVEL=0']);
      assert.match(r.out, /Cipher is \(NONE\)/, old);
      assert.match(r.out, /alert protocol version/, old);
    }
    assert.match(await metricsText(sidecar.adminPort), /sidecar_tls_handshake_failures_total\{listener="in",reason="protocol"\} 2/);
  });
});
