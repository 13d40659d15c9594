// jwt_authn through a real sidecar: tokens signed here with jose (RSA, EC, EdDSA), a JWKS served over HTTPS by a
// local server that rotates keys, the refusals (expired, nbf, audience, issuer, alg none, HMAC confusion), claims
// forwarded as headers, optional authentication, WebSocket upgrades and CONNECT guarded too, the token never logged.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT, type JWK, type CryptoKey } from 'jose';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { CertFactory } from '../helpers/certs.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { connectH2, h2Request } from '../helpers/proto-http.js';
import { accessLogFor, httpRequest } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

const ISS = 'https://issuer.test';

interface Key {
  readonly kid: string;
  readonly alg: string;
  readonly priv: CryptoKey;
  readonly jwk: JWK;
  readonly pub: CryptoKey;
}

async function key(kid: string, alg: 'RS256' | 'ES256' | 'EdDSA'): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  return { kid, alg, priv: privateKey, pub: publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

const nowS = (): number => Math.floor(Date.now() / 1000);

function sign(k: Key, claims: Record<string, unknown> = {}, opts: { iss?: string; aud?: string; exp?: number; nbf?: number } = {}): Promise<string> {
  const j = new SignJWT({ sub: 'alice', org: { team: 'payments' }, scope: 'orders:read orders:write', ...claims })
    .setProtectedHeader({ alg: k.alg, kid: k.kid })
    .setIssuer(opts.iss ?? ISS)
    .setAudience(opts.aud ?? 'api')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? nowS() + 600);
  if (opts.nbf !== undefined) j.setNotBefore(opts.nbf);
  return j.sign(k.priv);
}

function wsOpen(port: number, path: string, headers: Record<string, string> = {}): Promise<{ echoed?: string; status?: number; flag?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers, handshakeTimeout: 5000 });
    ws.on('open', () => ws.send('ping'));
    ws.on('message', (data: RawData) => {
      ws.close();
      resolve({ echoed: String(data) });
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode, flag: String(res.headers['x-sidecar-flag']) });
      res.resume();
      ws.terminate();
    });
    ws.on('error', reject);
  });
}

function connect(port: number, target: string, extra: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${extra}\r\n`));
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
}

describe('jwt_authn', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let app: TestUpstream;
  let jwksServer: https.Server;
  let wss: WebSocketServer;
  let target: net.Server;
  let rsa: Key, ec: Key, ed: Key, rotated: Key;
  let served: JWK[] = [];
  let jwksFetches = 0;
  let jwksFailing = false;
  const seen: IncomingHttpHeaders[] = [];
  const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

  before(async () => {
    [rsa, ec, ed, rotated] = await Promise.all([key('rsa1', 'RS256'), key('ec1', 'ES256'), key('ed1', 'EdDSA'), key('rsa2', 'RS256')]);
    served = [rsa.jwk, ec.jwk, ed.jwk];
    const certs = new CertFactory();
    const ca = await certs.ca();
    const leaf = await certs.leaf(ca, { dns: ['localhost'] });
    jwksServer = https.createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => {
      jwksFetches++;
      if (jwksFailing) {
        res.writeHead(500).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: served }));
    });
    jwksServer.listen(0, 'localhost');
    await once(jwksServer, 'listening');
    app = await startUpstream((req, res) => {
      seen.push(req.headers);
      reply(res, 200, JSON.stringify(req.headers));
    });
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    wss.on('connection', (ws) => ws.on('message', (data: RawData) => ws.send(String(data))));
    target = net.createServer((s) => s.end());
    target.listen(0, '127.0.0.1');
    await once(target, 'listening');
    const provider = `{ name: idp, issuer: "${ISS}", audiences: [api], algorithms: [RS256, ES256, EdDSA], clock_skew: 5s,
            jwks: { uri: "https://localhost:${(jwksServer.address() as AddressInfo).port}/jwks.json", ca_file: "${ca.certFile}", unknown_kid_refetch: 0s, refresh_interval: 200ms, stale_if_error: 1h },
            from: [{ bearer: true }, { header: x-token }, { cookie: tok }, { query: access_token }],
            forward_claims: { sub: x-user, org.team: x-team } }`;
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    filters:
      - type: jwt_authn
        config: { providers: [${provider}] }
    routes:
      - name: public
        match: { prefix: /public }
        cluster: app
        filter_overrides: { jwt_authn: { config: { optional: true, providers: [${provider}] } } }
      - { name: ws, match: { prefix: /ws }, cluster: wsapp }
      - { name: api, match: { prefix: / }, cluster: app }
  - name: fwd
    port: 0
    mode: forward
    forward: { allow_connect: true, connect_ports: [${(target.address() as AddressInfo).port}] }
    filters:
      - type: jwt_authn
        config: { providers: [${provider}] }
clusters:
  - { name: app, endpoints: ["${app.address}"] }
  - { name: wsapp, endpoints: ["127.0.0.1:${(wss.address() as AddressInfo).port}"] }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    await app.close();
    jwksServer.close();
    wss.close();
    target.close();
  });

  it('accepts RSA, EC and EdDSA tokens and forwards claims as headers, replacing client copies', async () => {
    for (const k of [rsa, ec, ed]) {
      const r = await httpRequest(port, { path: `/ok-${k.kid}`, headers: { ...bearer(await sign(k)), 'x-user': 'mallory', 'x-team': 'admins' } });
      assert.equal(r.status, 200, r.body);
      const h = JSON.parse(r.body) as Record<string, string>;
      assert.equal(h['x-user'], 'alice');
      assert.equal(h['x-team'], 'payments');
    }
  });

  it('reads the token from a header, a cookie and a query parameter', async () => {
    const t = await sign(ec);
    assert.equal((await httpRequest(port, { path: '/h', headers: { 'x-token': t } })).status, 200);
    assert.equal((await httpRequest(port, { path: '/c', headers: { cookie: `a=b; tok=${t}` } })).status, 200);
    assert.equal((await httpRequest(port, { path: `/q?a=1&access_token=${t}` })).status, 200);
    assert.equal((await accessLogFor(sidecar, '/q?a=1&access_token=[redacted]')).status, 200);
    assert.ok(!sidecar.stdout().includes(t), 'a token from the query is masked in the access log');
  });

  it('a missing token: 401 with a bare Bearer challenge, never forwarded', async () => {
    const before = seen.length;
    const r = await httpRequest(port, { path: '/missing', headers: { 'x-user': 'mallory' } });
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="sidecar"');
    assert.equal(r.headers['x-sidecar-flag'], 'UAN');
    assert.match(String(r.headers['x-sidecar-error']), /token missing/);
    assert.equal(seen.length, before);
  });

  it('refuses expired, not-yet-valid, wrong-audience, wrong-issuer, alg none and HMAC-confusion tokens', async () => {
    const pem = await exportSPKI(rsa.pub);
    const hmac = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256', kid: 'rsa1' })
      .setIssuer(ISS)
      .setAudience('api')
      .setExpirationTime(nowS() + 600)
      .sign(new TextEncoder().encode(pem));
    const none = new UnsecuredJWT({ sub: 'alice' }).setIssuer(ISS).setAudience('api').setExpirationTime(nowS() + 600).encode();
    const cases: Array<[string, string, RegExp]> = [
      ['expired', await sign(rsa, {}, { exp: nowS() - 60 }), /expired/],
      ['nbf', await sign(ec, {}, { nbf: nowS() + 600 }), /not yet valid/],
      ['aud', await sign(ed, {}, { aud: 'other' }), /audience/],
      ['iss', await sign(rsa, {}, { iss: 'https://evil.test' }), /issuer/],
      ['none', none, /algorithm not allowed|invalid/],
      ['hmac', hmac, /algorithm not allowed/],
      ['garbage', 'not.a.jwt', /malformed/],
    ];
    const before = seen.length;
    for (const [name, token, cause] of cases) {
      const r = await httpRequest(port, { path: `/bad-${name}`, headers: bearer(token) });
      assert.equal(r.status, 401, name);
      assert.match(String(r.headers['www-authenticate']), /^Bearer realm="sidecar", error="invalid_token", error_description="/, name);
      assert.match(String(r.headers['x-sidecar-error']), cause, name);
      const line = await accessLogFor(sidecar, `/bad-${name}`);
      assert.equal(line.response_flag, 'UAN');
      assert.match(String(line.error), cause);
    }
    assert.equal(seen.length, before);
    for (const [, token] of cases) if (token.length > 20) assert.ok(!sidecar.stdout().includes(token) && !sidecar.stderr().includes(token), 'token logged');
  });

  it('a rotated key: an unknown kid refetches the JWKS at once; a removed key stops verifying after the next refetch', async () => {
    const fetchesBefore = jwksFetches;
    served = [rotated.jwk, ec.jwk, ed.jwk];
    const r = await httpRequest(port, { path: '/rotated', headers: bearer(await sign(rotated)) });
    assert.equal(r.status, 200, r.body);
    assert.ok(jwksFetches > fetchesBefore);
    const old = await httpRequest(port, { path: '/old-key', headers: bearer(await sign(rsa)) });
    assert.equal(old.status, 401);
  });

  it('stale-if-error: while the JWKS server fails, the cached keys keep verifying; an unknown kid is refused', async () => {
    jwksFailing = true;
    try {
      const n = jwksFetches;
      await new Promise((r) => setTimeout(r, 300));
      const r = await httpRequest(port, { path: '/stale', headers: bearer(await sign(ec)) });
      assert.equal(r.status, 200, r.body);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(jwksFetches > n, 'a background refresh was tried');
      assert.equal((await httpRequest(port, { path: '/stale2', headers: bearer(await sign(ec)) })).status, 200);
      const unknown = await key('never-published', 'ES256');
      const u = await httpRequest(port, { path: '/unknown-kid', headers: bearer(await sign(unknown)) });
      assert.equal(u.status, 401);
      assert.match(String(u.headers['x-sidecar-error']), /no JWKS key matches/);
    } finally {
      jwksFailing = false;
    }
  });

  it('optional authentication: anonymous passes, a present bad token is still refused', async () => {
    assert.equal((await httpRequest(port, { path: '/public/x' })).status, 200);
    const bad = await httpRequest(port, { path: '/public/y', headers: bearer(await sign(ec, {}, { exp: nowS() - 60 })) });
    assert.equal(bad.status, 401);
    const ok = await httpRequest(port, { path: '/public/z', headers: bearer(await sign(ec)) });
    assert.equal((JSON.parse(ok.body) as Record<string, string>)['x-user'], 'alice');
  });

  it('guards WebSocket upgrades and CONNECT', async () => {
    const refused = await wsOpen(port, '/ws');
    assert.equal(refused.status, 401);
    assert.equal(refused.flag, 'UAN');
    const ok = await wsOpen(port, '/ws', bearer(await sign(ed)));
    assert.equal(ok.echoed, 'ping');
    const t = `127.0.0.1:${(target.address() as AddressInfo).port}`;
    assert.match(await connect(sidecar.ports.fwd!, t, ''), /^HTTP\/1\.1 401 /);
    assert.match(await connect(sidecar.ports.fwd!, t, `Authorization: Bearer ${await sign(ec)}\r\n`), /^HTTP\/1\.1 200 /);
  });

  it('applies to HTTP/2 requests alike', async () => {
    const session = await connectH2(port);
    try {
      const no = await h2Request(session, { ':method': 'GET', ':path': '/h2' });
      assert.equal(no.status, 401);
      assert.equal(no.headers['www-authenticate'], 'Bearer realm="sidecar"');
      const ok = await h2Request(session, { ':method': 'GET', ':path': '/h2', authorization: `Bearer ${await sign(ed)}` });
      assert.equal(ok.status, 200);
      assert.equal((JSON.parse(ok.body.toString()) as Record<string, string>)['x-user'], 'alice');
    } finally {
      session.close();
    }
  });

  it('counts outcomes', async () => {
    const r = await httpRequest(sidecar.adminPort, { path: '/metrics' });
    assert.match(r.body, /sidecar_authn_total\{[^}]*filter="jwt_authn"[^}]*outcome="ok"[^}]*\} [1-9]/);
    assert.match(r.body, /sidecar_authn_total\{[^}]*outcome="invalid"[^}]*\} [1-9]/);
    assert.match(r.body, /sidecar_authn_total\{[^}]*outcome="anonymous"[^}]*\} [1-9]/);
  });
});
