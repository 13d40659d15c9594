// Upstream TLS through the sidecar: verified HTTP/1.1 and HTTP/2 over TLS with reused connections, each refusal
// (expired, wrong CA, name mismatch, identity mismatch) a 503 UTE with the cause. The certificates come from the
// test helper, which also makes what the CLI cannot (expired ones); mutual TLS between two sidecars with
// certificates made by `sidecar certs` is in mtls-sidecars.test.ts.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { CertFactory, daysFromNow, type Ca } from '../helpers/certs.js';
import { startTlsUpstream, type TlsUpstream } from '../helpers/https-upstream.js';
import { metricsText } from '../helpers/admin.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor, httpRequest, waitUntil } from '../helpers/strict-net.js';

const API = 'spiffe://example.org/ns/default/sa/api';
const EVIL = 'spiffe://example.org/ns/default/sa/evil';

describe('upstream TLS and mTLS between sidecars', () => {
  let certs: CertFactory;
  let ca: Ca;
  let otherCa: Ca;
  let good: TlsUpstream;
  let h2: TlsUpstream;
  let expired: TlsUpstream;
  let wrongCa: TlsUpstream;
  let impostor: TlsUpstream;
  let checked: TlsUpstream;
  let outbound: RunningSidecar;
  let silent: tls.Server; // accepts TLS, reads the request, never answers
  let silentOpened = 0;
  let silentClosed = 0;

  before(async () => {
    certs = new CertFactory();
    ca = await certs.ca('ca');
    otherCa = await certs.ca('other');
    const apiLeaf = await certs.leaf(ca, { identity: API, dns: ['localhost', 'api.local'], name: 'api' });
    good = await startTlsUpstream(apiLeaf);
    h2 = await startTlsUpstream(apiLeaf, { h2: true });
    expired = await startTlsUpstream(await certs.leaf(ca, { dns: ['localhost'], notBefore: daysFromNow(-5), notAfter: daysFromNow(-1) }));
    wrongCa = await startTlsUpstream(await certs.leaf(otherCa, { dns: ['localhost'] }));
    impostor = await startTlsUpstream(await certs.leaf(ca, { identity: EVIL, dns: ['localhost'] }));
    checked = await startTlsUpstream(apiLeaf);
    silent = tls.createServer({ cert: apiLeaf.certPem, key: apiLeaf.keyPem }, (s) => {
      s.once('data', () => silentOpened++); // the request head arrived
      s.resume();
      s.on('error', () => {});
      s.on('close', () => silentClosed++);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    outbound = await startSidecar(`
listeners:
  - name: out
    port: 0
    routes:
      - { name: good, match: { prefix: /good }, cluster: good }
      - { name: h2, match: { prefix: /h2 }, cluster: h2 }
      - { name: expired, match: { prefix: /expired }, cluster: expired }
      - { name: wrongca, match: { prefix: /wrongca }, cluster: wrongca }
      - { name: name, match: { prefix: /name }, cluster: name }
      - { name: impostor, match: { prefix: /impostor-upstream }, cluster: impostor }
      - { name: silent, match: { prefix: /silent }, cluster: silent }
clusters:
  - name: good
    endpoints: ["${good.address}"]
    tls: { ca: ${ca.certFile}, sni: localhost }
  - name: h2
    protocol: h2
    endpoints: ["${h2.address}"]
    tls: { ca: ${ca.certFile}, sni: localhost }
  - name: expired
    endpoints: ["${expired.address}"]
    tls: { ca: ${ca.certFile}, sni: localhost }
  - name: wrongca
    endpoints: ["${wrongCa.address}"]
    tls: { ca: ${ca.certFile}, sni: localhost }
  - name: name
    endpoints: ["${good.address}"]
    tls: { ca: ${ca.certFile}, sni: other.example.com }
  - name: checked
    endpoints: ["${checked.address}"]
    tls: { ca: ${ca.certFile}, sni: localhost }
    health_check: { path: /healthz, interval: 100ms }
  - name: silent
    endpoints: ["127.0.0.1:${(silent.address() as AddressInfo).port}"]
    tls: { ca: ${ca.certFile}, sni: localhost }
  - name: impostor
    endpoints: ["${impostor.address}"]
    tls: { ca: ${ca.certFile}, expected_identities: ["spiffe://example.org/ns/*/sa/api"] }
`);
  });
  after(async () => {
    await outbound?.stop();
    for (const u of [good, h2, expired, wrongCa, impostor, checked]) await u?.close();
    silent?.close();
  });

  const get = (path: string): ReturnType<typeof httpRequest> => httpRequest(outbound.ports.out!, { path });

  it('reuses pooled TLS connections: 1,000 sequential HTTP/1.1 requests take a handful of handshakes', async () => {
    for (let i = 0; i < 1000; i++) {
      const r = await get(`/good/${i}`);
      assert.equal(r.status, 200, r.body);
    }
    assert.ok(good.handshakes() <= 3, `handshakes: ${good.handshakes()}`);
  });

  it('health-checks a TLS cluster over TLS (the same connector as requests)', async () => {
    assert.ok(await waitUntil(() => checked.paths.filter((p) => p === '/healthz').length >= 2, 5000), `probes seen: ${checked.paths.length}`);
    assert.ok(checked.handshakes() >= 1);
  });

  it('speaks HTTP/2 over TLS (ALPN h2) to a protocol h2 cluster, on one connection', async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`/h2/${i}`)));
    for (const r of rs) assert.equal(r.status, 200, r.body);
    assert.equal(h2.handshakes(), 1);
  });

  it('answers 503 UTE with the plain cause for expired, wrong-CA, name and identity mismatches', async () => {
    const cases: Array<[string, RegExp, string]> = [
      ['/expired', /certificate has expired/, 'expired'],
      ['/wrongca', /not signed by a trusted CA/, 'unknown_ca'],
      ['/name', /does not match the server name/, 'name_mismatch'],
      ['/impostor-upstream', /identity spiffe:\/\/example\.org\/ns\/default\/sa\/evil is not one of/, 'identity_mismatch'],
    ];
    for (const [path, cause] of cases) {
      const r = await get(path);
      assert.equal(r.status, 503, `${path}: ${r.body}`);
      assert.equal(r.headers['x-sidecar-flag'], 'UTE', path);
      assert.match(String(r.headers['x-sidecar-error']), cause, path);
      const log = await accessLogFor(outbound, path);
      assert.equal(log.response_flag, 'UTE');
      assert.equal(log.upstream_cause, 'tls-failure');
      assert.match(String(log.error), cause);
    }
    assert.equal(impostor.seen.length + expired.seen.length + wrongCa.seen.length, 0, 'nothing was sent to a refused upstream');
    const metrics = await metricsText(outbound.adminPort);
    for (const [, , reason] of cases) assert.match(metrics, new RegExp(`sidecar_tls_handshake_failures_total\\{cluster="[a-z]+",reason="${reason}"\\} [1-9]`), reason);
  });

  it('a client that goes away mid-request closes its TLS upstream connection, with no uncaught exception', async () => {
    // Cancelling an exchange resets a plain TCP upstream connection; a TLS socket cannot be reset that way
    // (resetAndDestroy throws ERR_INVALID_HANDLE_TYPE), so it used to stay open and log an uncaught exception.
    const req = http.request({ host: '127.0.0.1', port: outbound.ports.out!, path: '/silent/x', agent: false });
    req.on('error', () => {});
    req.end();
    assert.ok(await waitUntil(() => silentOpened === 1, 3000), 'the request reached the silent upstream');
    req.destroy();
    assert.ok(await waitUntil(() => silentClosed === 1, 3000), 'the upstream connection is closed');
    assert.doesNotMatch(outbound.stderr(), /uncaught exception|ERR_INVALID_HANDLE_TYPE/);
  });
});
