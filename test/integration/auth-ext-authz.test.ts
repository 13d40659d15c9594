// ext_authz through a real sidecar: a local authorization service allows (adding a header upstream) or denies; a
// slow or unreachable one fails closed or open by config; decisions are cached for the TTL; WebSocket too; over HTTPS
// with a custom CA, a server name and a client certificate.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { metricsText } from '../helpers/admin.js';
import { CertFactory } from '../helpers/certs.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest } from '../helpers/strict-net.js';
import { freePort, reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('ext_authz', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let app: TestUpstream;
  let authz: http.Server;
  let wss: WebSocketServer;
  const checks: http.IncomingHttpHeaders[] = [];
  const paths: string[] = [];

  before(async () => {
    authz = http.createServer((req, res) => {
      checks.push(req.headers);
      paths.push(req.url ?? '');
      const slow = req.url?.includes('/slow') === true;
      setTimeout(() => {
        if (req.headers.authorization === 'letmein') reply(res, 200, '', { 'x-authz-user': 'carol', 'x-other': 'dropped' });
        else reply(res, 403, 'no');
      }, slow ? 600 : 0);
    });
    authz.listen(0, '127.0.0.1');
    await once(authz, 'listening');
    const dead = await freePort();
    app = await startUpstream((req, res) => reply(res, 200, JSON.stringify(req.headers)));
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    wss.on('connection', (ws) => ws.on('message', (d) => ws.send(String(d))));
    const uri = `http://127.0.0.1:${(authz.address() as AddressInfo).port}/check`;
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    filters:
      - type: ext_authz
        config: { uri: "${uri}", timeout: 150ms, upstream_headers: [x-authz-user], cache: { ttl: 5s, max_entries: 100 } }
    routes:
      - name: open
        match: { prefix: /open }
        cluster: app
        filter_overrides: { ext_authz: { config: { uri: "http://127.0.0.1:${dead}/check", failure_mode_allow: true } } }
      - name: closed-dead
        match: { prefix: /dead }
        cluster: app
        filter_overrides: { ext_authz: { config: { uri: "http://127.0.0.1:${dead}/check", status_on_error: 503 } } }
      - { name: ws, match: { prefix: /ws }, cluster: wsapp }
      - { name: app, match: { prefix: / }, cluster: app }
clusters:
  - { name: app, endpoints: ["${app.address}"] }
  - { name: wsapp, endpoints: ["127.0.0.1:${(wss.address() as AddressInfo).port}"] }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    await app.close();
    authz.close();
    wss.close();
  });

  it('allows on 2xx, with the request metadata, copying only the configured response headers upstream', async () => {
    const r = await httpRequest(port, { path: '/orders?x=1', headers: { authorization: 'letmein', 'x-authz-user': 'forged', 'x-not-sent': 'a' } });
    assert.equal(r.status, 200, r.body);
    const h = JSON.parse(r.body) as Record<string, string>;
    assert.equal(h['x-authz-user'], 'carol');
    assert.equal(h['x-other'], undefined);
    const c = checks.at(-1)!;
    assert.equal(paths.at(-1), '/check/orders?x=1');
    assert.equal(c['x-forwarded-method'], 'GET');
    assert.equal(c['x-sidecar-authz-client'], '127.0.0.1');
    assert.equal(c['x-not-sent'], undefined);
  });

  it('denies with the service status and flag UAEX; the app sees nothing', async () => {
    const before = app.requests.length;
    const r = await httpRequest(port, { path: '/deny' });
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-sidecar-flag'], 'UAEX');
    assert.match(String(r.headers['x-sidecar-error']), /denied by the authorization service \(status 403\)/);
    assert.equal(app.requests.length, before);
  });

  it('caches decisions for the TTL', async () => {
    const n = checks.length;
    for (let i = 0; i < 3; i++) assert.equal((await httpRequest(port, { path: '/cached', headers: { authorization: 'letmein' } })).status, 200);
    assert.equal(checks.length, n + 1);
    assert.equal((await httpRequest(port, { path: '/cached', headers: { authorization: 'other' } })).status, 403, 'another credential is another key');
  });

  it('fails closed on a timeout or an unreachable service, open where configured', async () => {
    const t0 = Date.now();
    const slow = await httpRequest(port, { path: '/slow', headers: { authorization: 'letmein' } });
    assert.equal(slow.status, 403);
    assert.match(String(slow.headers['x-sidecar-error']), /timed out after 150ms \(failing closed\)/);
    assert.ok(Date.now() - t0 < 550, 'the timeout, not the service, ended the check');
    const dead = await httpRequest(port, { path: '/dead' });
    assert.equal(dead.status, 503);
    assert.match(String(dead.headers['x-sidecar-error']), /unreachable/);
    assert.equal((await httpRequest(port, { path: '/open' })).status, 200);
  });

  it('guards WebSocket upgrades', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { handshakeTimeout: 5000 });
      ws.on('unexpected-response', (_q, res) => (res.resume(), ws.terminate(), resolve(res.statusCode!)));
      ws.on('open', () => (ws.close(), resolve(101)));
      ws.on('error', reject);
    });
    assert.equal(status, 403);
    const echoed = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: 'letmein' }, handshakeTimeout: 5000 });
      ws.on('open', () => ws.send('hi'));
      ws.on('message', (d) => (ws.close(), resolve(String(d))));
      ws.on('error', reject);
    });
    assert.equal(echoed, 'hi');
  });

  it('counts outcomes', async () => {
    const m = await metricsText(sidecar.adminPort);
    for (const o of ['allow', 'deny', 'error', 'cache_hit']) assert.match(m, new RegExp(`sidecar_ext_authz_total\\{[^}]*outcome="${o}"[^}]*\\} [1-9]`), o);
  });
});

describe('ext_authz over HTTPS with a custom CA', () => {
  let sidecar: RunningSidecar;
  let app: TestUpstream;
  let authz: https.Server;
  const clientSans: Array<string | undefined> = [];
  let handshakes = 0;

  before(async () => {
    const certs = new CertFactory();
    const ca = await certs.ca('authz-ca');
    const other = await certs.ca('other-ca');
    const serverLeaf = await certs.leaf(ca, { dns: ['authz.local'], name: 'authz' });
    const sidecarLeaf = await certs.leaf(ca, { identity: 'spiffe://example.org/ns/edge/sa/sidecar', name: 'sidecar' });
    const stranger = await certs.leaf(other, { identity: 'spiffe://example.org/ns/x/sa/stranger', name: 'stranger' });
    // The service asks for a client certificate signed by its CA (mutual TLS) and allows `letmein`.
    authz = https.createServer({ cert: serverLeaf.certPem, key: serverLeaf.keyPem, ca: readFileSync(ca.certFile), requestCert: true, rejectUnauthorized: true }, (req, res) => {
      clientSans.push((req.socket as TLSSocket).getPeerCertificate().subjectaltname);
      if (req.headers.authorization === 'letmein') reply(res, 200, '', { 'x-authz-user': 'dana' });
      else reply(res, 403, 'no');
    });
    authz.on('tlsClientError', () => {});
    authz.on('secureConnection', () => handshakes++);
    authz.listen(0, '127.0.0.1');
    await once(authz, 'listening');
    const uri = `https://127.0.0.1:${(authz.address() as AddressInfo).port}/check`;
    app = await startUpstream((req, res) => reply(res, 200, JSON.stringify(req.headers)));
    const tls = (extra: string): string => `{ ca: "${ca.certFile}", sni: authz.local${extra} }`;
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    filters:
      - type: ext_authz
        config: { uri: "${uri}", timeout: 2s, upstream_headers: [x-authz-user], tls: ${tls(`, cert: "${sidecarLeaf.certFile}", key: "${sidecarLeaf.keyFile}"`)} }
    routes:
      - name: system-roots
        match: { prefix: /system-roots }
        cluster: app
        filter_overrides: { ext_authz: { config: { uri: "${uri}", timeout: 2s, status_on_error: 503 } } }
      - name: wrong-name
        match: { prefix: /wrong-name }
        cluster: app
        filter_overrides: { ext_authz: { config: { uri: "${uri}", timeout: 2s, status_on_error: 503, tls: { ca: "${ca.certFile}", sni: other.local, cert: "${sidecarLeaf.certFile}", key: "${sidecarLeaf.keyFile}" } } } }
      - name: foreign-client-cert
        match: { prefix: /foreign-client-cert }
        cluster: app
        filter_overrides: { ext_authz: { config: { uri: "${uri}", timeout: 2s, status_on_error: 503, tls: ${tls(`, cert: "${stranger.certFile}", key: "${stranger.keyFile}"`)} } } }
      - { name: app, match: { prefix: / }, cluster: app }
clusters:
  - { name: app, endpoints: ["${app.address}"] }
`);
  });

  after(async () => {
    await sidecar?.stop();
    await app?.close();
    authz?.closeAllConnections();
    authz?.close();
  });

  it('checks over TLS verified against the configured CA and server name, presenting the client certificate', async () => {
    const port = sidecar.ports.in!;
    const ok = await httpRequest(port, { path: '/orders', headers: { authorization: 'letmein' } });
    assert.equal(ok.status, 200, ok.body);
    assert.equal((JSON.parse(ok.body) as Record<string, string>)['x-authz-user'], 'dana');
    assert.match(String(clientSans.at(-1)), /spiffe:\/\/example\.org\/ns\/edge\/sa\/sidecar/);
    const denied = await httpRequest(port, { path: '/orders' });
    assert.equal(denied.status, 403);
    assert.equal(denied.headers['x-sidecar-flag'], 'UAEX');
    const again = await httpRequest(port, { path: '/orders', headers: { authorization: 'letmein' } });
    assert.equal(again.status, 200);
    assert.equal(handshakes, 1, 'three checks, one TLS connection (keep-alive)');
  });

  it('fails closed when the service cannot be verified: system roots, a wrong server name, or a client certificate it does not trust', async () => {
    const port = sidecar.ports.in!;
    const before = app.requests.length;
    for (const path of ['/system-roots', '/wrong-name', '/foreign-client-cert']) {
      const r = await httpRequest(port, { path, headers: { authorization: 'letmein' } });
      assert.equal(r.status, 503, `${path}: ${r.status} ${String(r.headers['x-sidecar-error'])}`);
      assert.equal(r.headers['x-sidecar-flag'], 'UAEX');
      assert.match(String(r.headers['x-sidecar-error']), /authorization service unreachable: .+ \(failing closed\)/, path);
    }
    assert.equal(app.requests.length, before, 'nothing reached the app');
  });

  it('refuses tls with an http:// uri, and a cert without its key, at config time', async () => {
    const { extAuthzConfig } = await import('../../src/filters/ext-authz/schema.js');
    assert.match(JSON.stringify(extAuthzConfig.safeParse({ uri: 'http://a/check', tls: { ca: 'x' } }).error?.issues), /tls needs an https:\/\/ uri/);
    assert.match(JSON.stringify(extAuthzConfig.safeParse({ uri: 'https://a/check', tls: { cert: 'x' } }).error?.issues), /cert and key go together/);
  });
});
