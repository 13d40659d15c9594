// Certificates in operation: files replaced under load take effect for new handshakes with no failed request (and a
// broken replacement keeps the old one), permissive mode takes plaintext and TLS on one port and counts each, and
// `sidecar validate` names the YAML path of a missing or mismatched file.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { CertFactory, type Ca, type Leaf } from '../helpers/certs.js';
import { startTlsUpstream, type TlsUpstream } from '../helpers/https-upstream.js';
import { metricsText } from '../helpers/admin.js';
import { BIN, startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep, waitUntil } from '../helpers/strict-net.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const API = 'spiffe://example.org/ns/default/sa/api';

/** Replaces cert and key the way secret mounts do: new files renamed over the old ones. */
function install(leaf: Leaf, certFile: string, keyFile: string): void {
  copyFileSync(leaf.keyFile, `${keyFile}.tmp`);
  copyFileSync(leaf.certFile, `${certFile}.tmp`);
  renameSync(`${keyFile}.tmp`, keyFile);
  renameSync(`${certFile}.tmp`, certFile);
}

const serialOf = (port: number, o: tls.ConnectionOptions): Promise<string> =>
  new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...o }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.end();
    });
    s.on('error', reject);
  });

function validate(file: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'validate', file], { encoding: 'utf8', timeout: 15_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, out: stdout + stderr }),
    );
  });
}

describe('TLS operations', () => {
  let certs: CertFactory;
  let ca: Ca;
  let first: Leaf;
  let client: Leaf;
  let upstream: TlsUpstream;
  let sidecar: RunningSidecar;
  let certFile: string;
  let keyFile: string;

  before(async () => {
    certs = new CertFactory();
    ca = await certs.ca('ca');
    first = await certs.leaf(ca, { identity: API, dns: ['localhost'], name: 'gen1' });
    client = await certs.leaf(ca, { identity: WEB, name: 'client' });
    certFile = path.join(certs.dir, 'workload.crt');
    keyFile = path.join(certs.dir, 'workload.key');
    install(first, certFile, keyFile);
    upstream = await startTlsUpstream(await certs.leaf(ca, { identity: 'spiffe://example.org/ns/default/sa/db', dns: ['localhost'] }), { clientCa: ca.certFile });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    tls: { cert: ${certFile}, key: ${keyFile}, client_ca: ${ca.certFile}, require_client_cert: true, forward_identity_header: x-peer-identity }
    routes: [{ name: all, match: { prefix: / }, cluster: db }]
  - name: mixed
    port: 0
    tls: { mode: permissive, cert: ${certFile}, key: ${keyFile}, client_ca: ${ca.certFile}, forward_identity_header: x-peer-identity }
    routes: [{ name: all, match: { prefix: / }, cluster: db }]
clusters:
  - name: db
    endpoints: ["${upstream.address}"]
    pool: { max_requests_per_connection: 100 }
    tls: { ca: ${ca.certFile}, cert: ${certFile}, key: ${keyFile}, expected_identities: ["spiffe://example.org/ns/default/sa/db"] }
`);
  });
  after(async () => {
    await sidecar?.stop();
    await upstream?.close();
  });

  it('permissive mode serves plaintext and mTLS on one port and counts each; the forged header is removed', async () => {
    const port = sidecar.ports.mixed!;
    const plain = await httpRequest(port, { path: '/plain', headers: { 'x-peer-identity': 'forged' } });
    assert.equal(plain.status, 200, plain.body);
    assert.equal(upstream.seen.at(-1)!['x-peer-identity'], undefined);
    assert.equal(upstream.seen.at(-1)!['x-forwarded-proto'], 'http');
    const secure = await new Promise<number>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path: '/secure', servername: 'localhost', ca: first.certPem.length ? [ca.cert.toString('pem')] : [], cert: client.certPem, key: client.keyPem, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
        .on('error', reject);
    });
    assert.equal(secure, 200);
    assert.equal(upstream.seen.at(-1)!['x-peer-identity'], WEB);
    assert.equal(upstream.seen.at(-1)!['x-forwarded-proto'], 'https');
    const m = await metricsText(sidecar.adminPort);
    assert.match(m, /sidecar_downstream_transport_connections_total\{listener="mixed",transport="plaintext"\} 1/);
    assert.match(m, /sidecar_downstream_transport_connections_total\{listener="mixed",transport="mtls"\} 1/);
  });

  it('rotates the workload certificate twice under mTLS load with zero failed requests; new handshakes get the new one', async () => {
    const port = sidecar.ports.in!;
    const tlsOpts = { ca: [ca.cert.toString('pem')], cert: client.certPem, key: client.keyPem, servername: 'localhost' };
    const agent = new https.Agent({ keepAlive: true, maxSockets: 8 });
    let ok = 0;
    const failures: string[] = [];
    let stop = false;
    const one = (fresh: boolean): Promise<void> =>
      new Promise((resolve) => {
        const req = https.get({ host: '127.0.0.1', port, path: '/load', ...tlsOpts, agent: fresh ? false : agent, timeout: 5000 }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) ok++;
            else failures.push(`status ${res.statusCode} ${String(res.headers['x-sidecar-error'])}`);
            resolve();
          });
        });
        req.on('error', (e) => {
          failures.push(e.message);
          resolve();
        });
      });
    // ~300 requests per second: 6 workers each sending one request every 20 ms; every 10th on a new connection.
    const workers = Array.from({ length: 6 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const t = Date.now();
        await one((i + w) % 10 === 0);
        await sleep(Math.max(0, 20 - (Date.now() - t)));
      }
    });
    const serials = [await serialOf(port, tlsOpts)];
    const upstreamSerials = (): Set<string> => new Set(upstream.clientCerts.map((c) => c.serial));
    for (let gen = 2; gen <= 3; gen++) {
      await sleep(5000);
      const next = await certs.leaf(ca, { identity: API, dns: ['localhost'], name: `gen${gen}` });
      install(next, certFile, keyFile);
      assert.ok(await waitUntil(() => sidecar.stderr().split('TLS files reloaded').length - 1 >= (gen - 1) * 3, 5000), 'reloaded');
      const seen = await serialOf(port, tlsOpts);
      assert.equal(seen, next.serial, `gen${gen}: a new connection gets the new certificate`);
      serials.push(seen);
      // The sidecar's new upstream connections present it too, as the client certificate.
      assert.ok(await waitUntil(() => upstreamSerials().has(next.serial), 5000), `gen${gen}: upstream saw the new client certificate`);
    }
    await sleep(5000);
    stop = true;
    await Promise.all(workers);
    agent.destroy();
    assert.deepEqual(failures.slice(0, 5), []);
    assert.ok(ok > 3000, `only ${ok} requests in ~15 s`);
    assert.equal(new Set(serials).size, 3);
    assert.match(await metricsText(sidecar.adminPort), /sidecar_certificate_expiry_seconds\{owner="listener:in",file="[^"]+",serial="[0-9A-F]+"\} \d+/);
  });

  it('keeps the certificate in force when a replacement does not load, logged and counted', async () => {
    const port = sidecar.ports.in!;
    const tlsOpts = { ca: [ca.cert.toString('pem')], cert: client.certPem, key: client.keyPem };
    const before = await serialOf(port, tlsOpts);
    writeFileSync(certFile, 'not a certificate\n');
    assert.ok(await waitUntil(() => /TLS files could not be loaded/.test(sidecar.stderr()), 5000));
    assert.equal(await serialOf(port, tlsOpts), before);
    assert.match(await metricsText(sidecar.adminPort), /sidecar_tls_reloads_total\{owner="listener:in",result="failure"\} [1-9]/);
  });

  it('sidecar validate names the YAML path of a missing file and of a key that does not belong to its certificate', async () => {
    const other = await certs.leaf(ca, { dns: ['localhost'] });
    const file = path.join(certs.dir, 'bad.yaml');
    writeFileSync(
      file,
      `listeners:
  - name: in
    port: 0
    tls:
      cert: ${first.certFile}
      key: ${other.keyFile}
    routes: [{ name: all, match: { prefix: / }, cluster: app }]
clusters:
  - name: app
    endpoints: ["127.0.0.1:1"]
    tls:
      ca: ${path.join(certs.dir, 'missing-ca.pem')}
`,
    );
    const r = await validate(file);
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /:6:\d+.*listeners\[0\]\.tls\.key.*does not belong to certificate/);
    assert.match(r.out, /:12:\d+.*clusters\[0\]\.tls\.ca.*no such file/);
  });
});
