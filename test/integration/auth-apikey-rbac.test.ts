// api_key and rbac together through a real sidecar: keys from a file (plain and sha256:) and the environment, the
// key name in the access log and in authorization, JWT claims in rbac rules (scope contains), source CIDR rules,
// the key never forwarded nor logged.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { metricsText } from '../helpers/admin.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor, httpRequest } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

const CI_KEY = 'ci-0123456789abcdef';
const OPS_KEY = 'ops-fedcba9876543210';
const ENV_KEY = 'env-key-from-the-environment';

describe('api_key and rbac', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let app: TestUpstream;
  let priv: CryptoKey;
  let target: net.Server;

  before(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-apikey-'));
    const keysFile = path.join(dir, 'keys.txt');
    writeFileSync(keysFile, `# name key\nci ${CI_KEY}\nops sha256:${createHash('sha256').update(OPS_KEY).digest('hex')}\n`);
    const kp = await generateKeyPair('ES256', { extractable: true });
    priv = kp.privateKey;
    const jwk = { ...(await exportJWK(kp.publicKey)), kid: 'k1', alg: 'ES256' };
    app = await startUpstream((req, res) => reply(res, 200, JSON.stringify(req.headers)));
    target = net.createServer((sock) => sock.end());
    target.listen(0, '127.0.0.1');
    await once(target, 'listening');
    sidecar = await startSidecar(
      `
listeners:
  - name: in
    port: 0
    filters:
      - type: api_key
        config: { keys_file: ${keysFile}, keys_env: [{ name: deploy, env: DEPLOY_KEY }], optional: true, name_header: x-api-key-name }
      - type: jwt_authn
        config: { optional: true, providers: [{ name: idp, issuer: "https://issuer.test", jwks: { keys: [${JSON.stringify(jwk)}] } }] }
      - type: rbac
        config:
          rules:
            - { name: ci-reads, action: allow, api_keys: [ci, deploy], methods: [GET] }
            - { name: ops-all, action: allow, api_keys: [ops] }
            - { name: writers, action: allow, methods: [POST], claims: [{ claim: scope, contains: "orders:write" }] }
            - { name: local-health, action: allow, paths: [{ exact: /health }], source_ips: ["127.0.0.0/8", "::1"] }
            - { name: no-secrets, action: deny, paths: [{ prefix: /secrets }], api_keys: [ci, deploy] }
    routes: [{ name: app, match: { prefix: / }, cluster: app }]
  - name: fwd
    port: 0
    mode: forward
    forward: { allow_connect: true, connect_ports: [${(target.address() as AddressInfo).port}] }
    filters:
      - { type: api_key, config: { keys_file: ${keysFile}, optional: true } }
      - { type: rbac, config: { rules: [{ name: ci-tunnels, action: allow, api_keys: [ci] }] } }
clusters:
  - { name: app, endpoints: ["${app.address}"] }
`,
      { env: { ...process.env, DEPLOY_KEY: ENV_KEY } },
    );
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    await app.close();
    target.close();
  });

  const token = (scope: string): Promise<string> =>
    new SignJWT({ sub: 'bob', scope }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('https://issuer.test').setExpirationTime('5m').sign(priv);

  it('a file key (plain or stored as sha256) and an env key authenticate; the name is forwarded and logged, the key is not', async () => {
    for (const [key, name] of [[CI_KEY, 'ci'], [OPS_KEY, 'ops'], [ENV_KEY, 'deploy']] as const) {
      const r = await httpRequest(port, { path: `/k/${name}`, headers: { 'x-api-key': key, 'x-api-key-name': 'forged' } });
      assert.equal(r.status, 200, r.body);
      const h = JSON.parse(r.body) as Record<string, string>;
      assert.equal(h['x-api-key-name'], name);
      assert.equal(h['x-api-key'], undefined);
      assert.equal((await accessLogFor(sidecar, `/k/${name}`)).api_key, name);
    }
    assert.ok(![CI_KEY, OPS_KEY, ENV_KEY].some((k) => sidecar.stdout().includes(k) || sidecar.stderr().includes(k)));
  });

  it('an unknown key: 401 with a challenge; no key and no other grant: 403 default deny', async () => {
    const r = await httpRequest(port, { path: '/bad', headers: { 'x-api-key': 'nope' } });
    assert.equal(r.status, 401);
    assert.equal(r.headers['x-sidecar-flag'], 'UAN');
    assert.match(String(r.headers['www-authenticate']), /^ApiKey realm="sidecar"/);
    const anon = await httpRequest(port, { path: '/orders' });
    assert.equal(anon.status, 403);
    assert.equal(anon.headers['x-sidecar-flag'], 'RBAC');
  });

  it('rbac on the key name: deny wins for ci on /secrets; ops is allowed; ci cannot POST', async () => {
    const s = await httpRequest(port, { path: '/secrets/x', headers: { 'x-api-key': CI_KEY } });
    assert.equal(s.status, 403);
    assert.match(String(s.headers['x-sidecar-error']), /denied by rule no-secrets \(principal ci\)/);
    assert.equal((await httpRequest(port, { path: '/secrets/x', headers: { 'x-api-key': OPS_KEY } })).status, 200);
    assert.equal((await httpRequest(port, { path: '/orders', method: 'POST', headers: { 'x-api-key': CI_KEY } })).status, 403);
  });

  it('rbac on JWT claims: scope contains orders:write may POST', async () => {
    assert.equal((await httpRequest(port, { path: '/orders', method: 'POST', headers: { authorization: `Bearer ${await token('orders:read orders:write')}` } })).status, 200);
    const r = await httpRequest(port, { path: '/orders', method: 'POST', headers: { authorization: `Bearer ${await token('orders:read')}` } });
    assert.equal(r.status, 403);
    assert.match(String(r.headers['x-sidecar-error']), /principal bob/);
  });

  it('rbac on the source address', async () => {
    assert.equal((await httpRequest(port, { path: '/health' })).status, 200);
  });

  it('rbac guards CONNECT tunnels too', async () => {
    const t = `127.0.0.1:${(target.address() as AddressInfo).port}`;
    const connect = (extra: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = net.connect(sidecar.ports.fwd!, '127.0.0.1', () => s.write(`CONNECT ${t} HTTP/1.1\r\nHost: ${t}\r\n${extra}\r\n`));
        let data = '';
        s.on('data', (d: Buffer) => {
          data += d.toString('latin1');
          if (data.includes('\r\n\r\n')) {
            s.destroy();
            resolve(data);
          }
        });
        s.on('error', reject);
        s.setTimeout(5000, () => s.destroy(new Error('timeout')));
      });
    assert.match(await connect(''), /^HTTP\/1\.1 403 [^]*x-sidecar-flag: RBAC/);
    assert.match(await connect(`x-api-key: ${OPS_KEY}\r\n`), /^HTTP\/1\.1 403 /);
    assert.match(await connect(`x-api-key: ${CI_KEY}\r\n`), /^HTTP\/1\.1 200 /);
  });

  it('counts api_key outcomes and rbac decisions', async () => {
    const m = await metricsText(sidecar.adminPort);
    assert.match(m, /sidecar_authn_total\{[^}]*filter="api_key"[^}]*outcome="ok"[^}]*\} [1-9]/);
    assert.match(m, /sidecar_authn_total\{[^}]*filter="api_key"[^}]*outcome="invalid"[^}]*\} [1-9]/);
    assert.match(m, /sidecar_rbac_decisions_total\{[^}]*decision="deny"[^}]*\} [1-9]/);
  });
});
