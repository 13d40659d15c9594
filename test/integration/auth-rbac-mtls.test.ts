// rbac on the mTLS peer identity between two sidecars: the inbound sidecar's policy allows the web workload, denies
// /admin to everyone (deny wins), refuses an identity no rule allows (default deny) with 403 RBAC naming the rule,
// and a dry-run listener lets the same requests through while logging and counting what it would have denied.
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
const BATCH = 'spiffe://example.org/ns/jobs/sa/batch';
const API = 'spiffe://example.org/ns/default/sa/api';

function certs(...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, 'certs', ...args], { encoding: 'utf8', timeout: 30_000 }, (err, _stdout, stderr) =>
      err ? reject(new Error(`sidecar certs ${args.join(' ')}: ${stderr}`)) : resolve(),
    );
  });
}

const workload = (dir: string): { cert: string; key: string; ca: string } => ({ cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem'), ca: path.join(dir, 'ca.pem') });

describe('rbac on the mTLS peer identity between two sidecars', () => {
  let app: TestUpstream;
  let inbound: RunningSidecar;
  let outbound: RunningSidecar;

  before(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-rbac-'));
    const d = (name: string): string => path.join(dir, name);
    await certs('init-ca', '--trust-domain', 'example.org', '--out', d('ca'));
    await Promise.all([
      certs('issue', '--ca', d('ca'), '--identity', WEB, '--out', d('web')),
      certs('issue', '--ca', d('ca'), '--identity', BATCH, '--out', d('batch')),
      certs('issue', '--ca', d('ca'), '--identity', API, '--out', d('api'), '--dns', 'localhost', '--ip', '127.0.0.1'),
    ]);
    const [web, batch, api] = [workload(d('web')), workload(d('batch')), workload(d('api'))];
    app = await startUpstream();
    const listener = (name: string, dryRun: boolean): string => `
  - name: ${name}
    port: 0
    tls: { cert: ${api.cert}, key: ${api.key}, client_ca: ${api.ca}, require_client_cert: true }
    filters:
      - type: rbac
        config:
          dry_run: ${dryRun}
          rules:
            - { name: no-admin, action: deny, paths: [{ regex: "/[a-z-]+/admin(/.*)?" }] }
            - { name: web-workloads, action: allow, peers: ["spiffe://example.org/ns/*/sa/web"], methods: [GET, POST] }
    routes: [{ name: app, match: { prefix: / }, cluster: app }]`;
    inbound = await startSidecar(`listeners:${listener('in', false)}${listener('dry', true)}
clusters:
  - { name: app, endpoints: ["${app.address}"] }
`);
    const mesh = (name: string, port: number, leaf: { cert: string; key: string }): string => `
  - name: ${name}
    endpoints: ["127.0.0.1:${port}"]
    tls: { ca: ${web.ca}, cert: ${leaf.cert}, key: ${leaf.key}, expected_identities: ["${API}"] }`;
    outbound = await startSidecar(`
listeners:
  - name: out
    port: 0
    routes:
      - { match: { prefix: /web/ }, cluster: web }
      - { match: { prefix: /batch/ }, cluster: batch }
      - { match: { prefix: /dry-batch/ }, cluster: dry-batch }
      - { match: { prefix: /dry-web/ }, cluster: dry-web }
clusters:${mesh('web', inbound.ports.in!, web)}${mesh('batch', inbound.ports.in!, batch)}${mesh('dry-batch', inbound.ports.dry!, batch)}${mesh('dry-web', inbound.ports.dry!, web)}
`);
  });

  after(async () => {
    await outbound?.stop();
    await inbound?.stop();
    await app?.close();
  });

  const get = (p: string, method = 'GET'): ReturnType<typeof httpRequest> => httpRequest(outbound.ports.out!, { path: p, method });

  it('allows the identity a rule allows', async () => {
    const r = await get('/web/orders');
    assert.equal(r.status, 200, r.body);
    assert.equal((await accessLogFor(inbound, '/web/orders')).peer_identity, WEB);
  });

  it('a deny rule wins over an allow rule: 403 RBAC naming the rule; the app sees nothing', async () => {
    const before = app.requests.length;
    const r = await get('/web/admin/users');
    assert.equal(r.status, 403, r.body);
    assert.equal(r.headers['x-sidecar-flag'], 'RBAC');
    assert.match(String(r.headers['x-sidecar-error']), /denied by rule no-admin \(principal spiffe:\/\/example\.org\/ns\/default\/sa\/web\)/);
    const log = await accessLogFor(inbound, '/web/admin/users');
    assert.equal(log.response_flag, 'RBAC');
    assert.match(String(log.error), /no-admin/);
    assert.equal(app.requests.length, before);
  });

  it('default deny: an identity no allow rule names, or a method the rule leaves out', async () => {
    const r = await get('/batch/orders');
    assert.equal(r.status, 403);
    assert.match(String(r.headers['x-sidecar-error']), /no allow rule matched \(default deny\) \(principal spiffe:\/\/example\.org\/ns\/jobs\/sa\/batch\)/);
    const del = await get('/web/orders/1', 'DELETE');
    assert.equal(del.status, 403);
  });

  it('dry run: the same requests pass, are logged and counted as would-be denials', async () => {
    const r = await get('/dry-batch/orders');
    assert.equal(r.status, 200, r.body);
    const a = await get('/dry-web/admin');
    assert.equal(a.status, 200, a.body);
    const log = await accessLogFor(inbound, '/dry-batch/orders');
    assert.equal(log.response_flag, null);
    assert.match(String(log.error), /rbac dry run: would deny: no allow rule matched/);
    const m = await metricsText(inbound.adminPort);
    assert.match(m, /sidecar_rbac_decisions_total\{[^}]*listener="dry"[^}]*decision="dry_run_deny"[^}]*\} 2/);
    assert.match(m, /sidecar_rbac_decisions_total\{[^}]*listener="in"[^}]*decision="deny"[^}]*\} [1-9]/);
    assert.match(m, /sidecar_rbac_decisions_total\{[^}]*listener="in"[^}]*decision="allow"[^}]*\} [1-9]/);
  });
});
