// Mutual TLS between two sidecars with certificates made by the real `sidecar certs init-ca` / `issue` commands:
// the caller's identity reaches the access log and the configured header, and impostors (right CA but wrong SPIFFE
// ID; another CA) are refused in both directions: as clients by the inbound sidecar, as servers by the outbound one.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { metricsText } from '../helpers/admin.js';
import { BIN, startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor, httpRequest } from '../helpers/strict-net.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const WEB = 'spiffe://example.org/ns/default/sa/web';
const API = 'spiffe://example.org/ns/default/sa/api';
const EVIL = 'spiffe://example.org/ns/default/sa/evil';

/** Runs `sidecar certs ARGS` and fails the test with its stderr unless it exits 0. */
function certs(...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'certs', ...args], { encoding: 'utf8', timeout: 30_000 }, (err, _stdout, stderr) =>
      err ? reject(new Error(`sidecar certs ${args.join(' ')}: ${stderr}`)) : resolve(),
    );
  });
}

/** The files `certs issue --out DIR` writes. */
const workload = (dir: string): { cert: string; key: string; ca: string } => ({
  cert: path.join(dir, 'cert.pem'),
  key: path.join(dir, 'key.pem'),
  ca: path.join(dir, 'ca.pem'),
});

describe('mTLS between two sidecars, certificates made by `sidecar certs`', () => {
  let app: TestUpstream;
  let inbound: RunningSidecar; // sidecar B, in front of the app, identity api
  let impostors: RunningSidecar; // servers that are not B: right CA wrong identity, and another CA
  let outbound: RunningSidecar; // sidecar A, the caller's, identity web

  before(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-mtls-'));
    const d = (name: string): string => path.join(dir, name);
    await certs('init-ca', '--trust-domain', 'example.org', '--out', d('ca'));
    // Same trust domain, another key: a CA nobody here trusts.
    await certs('init-ca', '--trust-domain', 'example.org', '--out', d('other-ca'));
    await Promise.all([
      certs('issue', '--ca', d('ca'), '--identity', WEB, '--out', d('web')),
      certs('issue', '--ca', d('ca'), '--identity', API, '--out', d('api'), '--dns', 'localhost', '--ip', '127.0.0.1'),
      certs('issue', '--ca', d('ca'), '--identity', EVIL, '--out', d('evil'), '--ip', '127.0.0.1'),
      certs('issue', '--ca', d('other-ca'), '--identity', WEB, '--out', d('foreign-web')),
      certs('issue', '--ca', d('other-ca'), '--identity', API, '--out', d('foreign-api'), '--ip', '127.0.0.1'),
    ]);
    const [web, api, evil, foreignWeb, foreignApi] = [workload(d('web')), workload(d('api')), workload(d('evil')), workload(d('foreign-web')), workload(d('foreign-api'))];
    const trust = api.ca; // the mesh CA's bundle, as `issue` writes it next to each workload certificate
    app = await startUpstream();
    const mtlsListener = (name: string, leaf: { cert: string; key: string }): string => `
  - name: ${name}
    port: 0
    tls:
      cert: ${leaf.cert}
      key: ${leaf.key}
      client_ca: ${trust}
      require_client_cert: true
      allowed_identities: ["spiffe://example.org/ns/*/sa/web"]
      forward_identity_header: x-peer-identity
    routes: [{ name: app, match: { prefix: / }, cluster: app }]`;
    const appCluster = `
clusters:
  - name: app
    endpoints: ["${app.address}"]
`;
    inbound = await startSidecar(`listeners:${mtlsListener('in', api)}${appCluster}`);
    impostors = await startSidecar(`listeners:${mtlsListener('evil', evil)}${mtlsListener('foreign', foreignApi)}${appCluster}`);
    const mesh = (name: string, port: number, leaf: { cert: string; key: string }): string => `
  - name: ${name}
    endpoints: ["127.0.0.1:${port}"]
    tls: { ca: ${web.ca}, cert: ${leaf.cert}, key: ${leaf.key}, expected_identities: ["${API}"] }`;
    outbound = await startSidecar(`
listeners:
  - name: out
    port: 0
    routes:
      - { name: mesh, match: { prefix: /mesh }, cluster: mesh }
      - { name: evil-client, match: { prefix: /evil-client }, cluster: evil-client }
      - { name: foreign-client, match: { prefix: /foreign-client }, cluster: foreign-client }
      - { name: evil-server, match: { prefix: /evil-server }, cluster: evil-server }
      - { name: foreign-server, match: { prefix: /foreign-server }, cluster: foreign-server }
clusters:${mesh('mesh', inbound.ports.in!, web)}${mesh('evil-client', inbound.ports.in!, evil)}${mesh('foreign-client', inbound.ports.in!, foreignWeb)}${mesh(
      'evil-server',
      impostors.ports.evil!,
      web,
    )}${mesh('foreign-server', impostors.ports.foreign!, web)}
`);
  });
  after(async () => {
    await outbound?.stop();
    await impostors?.stop();
    await inbound?.stop();
    await app?.close();
  });

  const get = (path: string, headers: Record<string, string> = {}): ReturnType<typeof httpRequest> => httpRequest(outbound.ports.out!, { path, headers });

  it('carries the caller identity to the access log and the configured header; a client-sent copy is replaced', async () => {
    const r = await get('/mesh/hello', { 'x-peer-identity': EVIL });
    assert.equal(r.status, 200, r.body);
    const seen = app.requests.at(-1)!;
    assert.equal(seen.headers['x-peer-identity'], WEB);
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    const log = await accessLogFor(inbound, '/mesh/hello');
    assert.equal(log.peer_identity, WEB);
    const metrics = await metricsText(inbound.adminPort);
    assert.match(metrics, /sidecar_downstream_transport_connections_total\{listener="in",transport="mtls"\} [1-9]/);
  });

  it('the inbound sidecar refuses impostor clients (right CA wrong identity; another CA); the app sees nothing', async () => {
    const before = app.requests.length;
    for (const p of ['/evil-client/x', '/foreign-client/x']) {
      const r = await get(p);
      assert.ok(r.status === 502 || r.status === 503, `${p}: ${r.status} ${r.body}`);
    }
    assert.equal(app.requests.length, before);
    const metrics = await metricsText(inbound.adminPort);
    assert.match(metrics, /sidecar_tls_handshake_failures_total\{listener="in",reason="identity_mismatch"\} [1-9]/);
    assert.match(metrics, /sidecar_tls_handshake_failures_total\{listener="in",reason="unknown_ca"\} [1-9]/);
  });

  it('the outbound sidecar refuses impostor servers (right CA wrong identity; another CA) with 503 UTE; nothing is sent', async () => {
    const before = app.requests.length;
    const cases: Array<[string, RegExp, string]> = [
      ['/evil-server/x', /identity spiffe:\/\/example\.org\/ns\/default\/sa\/evil is not one of/, 'identity_mismatch'],
      ['/foreign-server/x', /not signed by a trusted CA/, 'unknown_ca'],
    ];
    for (const [p, cause] of cases) {
      const r = await get(p);
      assert.equal(r.status, 503, `${p}: ${r.body}`);
      assert.equal(r.headers['x-sidecar-flag'], 'UTE', p);
      assert.match(String(r.headers['x-sidecar-error']), cause, p);
      const log = await accessLogFor(outbound, p);
      assert.equal(log.upstream_cause, 'tls-failure');
    }
    assert.equal(app.requests.length, before, 'the impostors never got a request to forward');
    assert.equal(impostors.accessLog().length, 0);
    const metrics = await metricsText(outbound.adminPort);
    for (const [p, , reason] of cases) {
      assert.match(metrics, new RegExp(`sidecar_tls_handshake_failures_total\\{cluster="${p.split('/')[1]}",reason="${reason}"\\} [1-9]`), reason);
    }
  });
});
