// The mesh hop with two real sidecars, over h2c and over h2 with mutual TLS: many HTTP/1.1 requests from the app share
// one or two HTTP/2 connections between the sidecars (counted by a TCP pass-through in front of the inbound sidecar),
// the hop marker is added only toward `peer: sidecar` clusters and never reaches an app, deadlines cross the hop only
// from an identified sidecar, and both access logs name the request and the identities on each side.
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { CertFactory, type Leaf } from '../helpers/certs.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor, httpRequest } from '../helpers/strict-net.js';
import { echo, startUpstream, type SeenRequest, type TestUpstream } from '../helpers/upstream.js';

const WEB = 'spiffe://example.org/ns/default/sa/web'; // the outbound sidecar (the caller's)
const API = 'spiffe://example.org/ns/default/sa/api'; // the inbound sidecar (in front of the app)

/** A TCP pass-through that counts the connections it accepts: how many the outbound sidecar opened to the inbound one. */
interface PassThrough {
  readonly port: number;
  accepted(): number;
  close(): Promise<void>;
}

async function countingPassThrough(targetPort: number): Promise<PassThrough> {
  let accepted = 0;
  const open = new Set<net.Socket>();
  const server = net.createServer((down) => {
    accepted++;
    const up = net.connect(targetPort, '127.0.0.1');
    for (const s of [down, up]) {
      open.add(s);
      s.once('close', () => open.delete(s));
      s.on('error', () => {
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('the mesh hop between two sidecars (h2c, and h2 with mutual TLS)', () => {
  let app: TestUpstream; // behind the inbound sidecar
  let plain: TestUpstream; // an app upstream the outbound sidecar calls directly (peer: app)
  let recorder: http.Server; // stands in for a sidecar (peer: sidecar, protocol: http1): records the heads it gets
  const recorded: Array<{ url: string; upgrade: boolean; hop: string | string[] | undefined }> = [];
  let inbound: RunningSidecar;
  let outbound: RunningSidecar;
  let h2cPass: PassThrough;
  let tlsPass: PassThrough;
  let api: Leaf;
  let web: Leaf;
  let caFile: string;
  let caPem: string; // the mesh CA: the inbound sidecar's certificate chains to it
  const timers = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  let maxInFlight = 0;

  before(async () => {
    const certs = new CertFactory();
    const ca = await certs.ca();
    caFile = ca.certFile;
    caPem = ca.cert.toString('pem');
    api = await certs.leaf(ca, { identity: API, dns: ['localhost'], name: 'api' });
    web = await certs.leaf(ca, { identity: WEB, name: 'web' });
    app = await startUpstream((req, res, body) => {
      const url = req.url ?? '';
      const wait = url.includes('/slow') ? 4000 : url.includes('/conc') ? 800 : 0;
      if (wait === 0) return echo(req, res, body);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const t = setTimeout(() => {
        timers.delete(t);
        inFlight--;
        if (!res.destroyed) echo(req, res, body);
      }, wait);
      timers.add(t);
      res.once('close', () => {
        if (timers.delete(t)) {
          clearTimeout(t);
          inFlight--;
        }
      });
    });
    plain = await startUpstream();
    recorder = http.createServer((req, res) => {
      recorded.push({ url: req.url ?? '', upgrade: false, hop: req.headers['x-sidecar-hop'] });
      res.end('ok');
    });
    recorder.on('upgrade', (req, socket: net.Socket) => {
      recorded.push({ url: req.url ?? '', upgrade: true, hop: req.headers['x-sidecar-hop'] });
      socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n');
    });
    await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
    const appRoutes = `
      - { name: allowed, match: { prefix: /allowed }, cluster: app, timeout_header_allowed: true }
      - { name: app, match: { prefix: / }, cluster: app }`;
    inbound = await startSidecar(`
listeners:
  - name: h2c
    port: 0
    routes:${appRoutes}
  - name: mtls
    port: 0
    tls: { cert: ${api.certFile}, key: ${api.keyFile}, client_ca: ${caFile}, require_client_cert: true }
    routes:${appRoutes}
  - name: optional-cert
    port: 0
    tls: { cert: ${api.certFile}, key: ${api.keyFile}, client_ca: ${caFile} }
    routes:${appRoutes}
clusters:
  - name: app
    endpoints: ["${app.address}"]
`);
    h2cPass = await countingPassThrough(inbound.ports.h2c!);
    tlsPass = await countingPassThrough(inbound.ports.mtls!);
    outbound = await startSidecar(`
listeners:
  - name: out
    port: 0
    hop_marker: ignore
    routes:
      - { name: direct, match: { prefix: /direct }, cluster: plain }
      - { name: recorder, match: { prefix: /rec }, cluster: recorder }
      - { name: h2c-short, match: { prefix: /h2c/short }, cluster: mesh-h2c, timeout: 3s }
      - { name: h2c, match: { prefix: /h2c }, cluster: mesh-h2c }
      - { name: tls-short, match: { prefix: /tls/short }, cluster: mesh-tls, timeout: 3s }
      - { name: tls-h1-short, match: { prefix: /h1/short }, cluster: mesh-tls-h1, timeout: 3s }
      - { name: tls, match: { prefix: /tls }, cluster: mesh-tls }
clusters:
  - name: plain
    endpoints: ["${plain.address}"]
  - name: recorder
    peer: sidecar
    protocol: http1
    endpoints: ["127.0.0.1:${(recorder.address() as AddressInfo).port}"]
  - name: mesh-h2c
    peer: sidecar
    endpoints: ["127.0.0.1:${h2cPass.port}"]
  - name: mesh-tls
    peer: sidecar
    endpoints: ["127.0.0.1:${tlsPass.port}"]
    tls: { ca: ${caFile}, cert: ${web.certFile}, key: ${web.keyFile}, expected_identities: ["${API}"] }
  - name: mesh-tls-h1
    peer: sidecar
    protocol: http1
    endpoints: ["127.0.0.1:${inbound.ports.mtls!}"]
    tls: { ca: ${caFile}, cert: ${web.certFile}, key: ${web.keyFile}, expected_identities: ["${API}"] }
`);
  });

  after(async () => {
    for (const t of timers) clearTimeout(t);
    await outbound?.stop();
    await inbound?.stop();
    await h2cPass?.close();
    await tlsPass?.close();
    await app?.close();
    await plain?.close();
    recorder?.closeAllConnections();
    await new Promise<void>((resolve) => (recorder ? recorder.close(() => resolve()) : resolve()));
  });

  const seenBy = (upstream: TestUpstream, path: string): SeenRequest => {
    const r = upstream.requests.find((q) => q.url === path);
    assert.ok(r, `the upstream saw ${path}`);
    return r;
  };

  for (const kind of ['h2c', 'tls'] as const) {
    it(`${kind}: 64 concurrent HTTP/1.1 requests from the app cross the hop on at most 2 connections`, { timeout: 30_000 }, async () => {
      const pass = kind === 'h2c' ? h2cPass : tlsPass;
      const before = pass.accepted();
      maxInFlight = 0;
      const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
      try {
        const results = await Promise.all(
          Array.from({ length: 64 }, (_, i) => httpRequest(outbound.ports.out!, { path: `/${kind}/conc/${i}`, agent, timeoutMs: 20_000 })),
        );
        for (const r of results) assert.equal(r.status, 200, r.body);
      } finally {
        agent.destroy();
      }
      // They really were concurrent at the app (so they were concurrent on the hop), yet shared one or two connections.
      assert.ok(maxInFlight >= 32, `only ${maxInFlight} requests were in flight at once`);
      const opened = pass.accepted() - before;
      assert.ok(opened >= 0 && pass.accepted() >= 1 && pass.accepted() <= 2, `${pass.accepted()} connections between the sidecars (${opened} during the burst)`);
    });
  }

  it('toward a peer: sidecar cluster every request carries x-sidecar-hop: 1 once, WebSocket upgrades too', { timeout: 15_000 }, async () => {
    const r = await httpRequest(outbound.ports.out!, { path: '/rec/plain', headers: { 'x-sidecar-hop': 'forged' } });
    assert.equal(r.status, 200, r.body);
    const upgraded = await new Promise<string>((resolve, reject) => {
      const c = net.connect(outbound.ports.out!, '127.0.0.1', () =>
        c.write('GET /rec/ws HTTP/1.1\r\nHost: app.local\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'),
      );
      let got = '';
      c.setEncoding('latin1');
      c.on('data', (d: string) => (got += d));
      c.once('close', () => resolve(got));
      c.once('error', reject);
      c.setTimeout(5000, () => c.destroy());
    });
    assert.match(upgraded, /^HTTP\/1\.1 101/);
    assert.deepEqual(recorded, [
      { url: '/rec/plain', upgrade: false, hop: '1' },
      { url: '/rec/ws', upgrade: true, hop: '1' },
    ]);
  });

  it('the marker goes only to peer: sidecar clusters, and the receiving sidecar strips it: no app ever sees it', { timeout: 15_000 }, async () => {
    for (const path of ['/direct/hop', '/h2c/hop', '/tls/hop']) {
      const r = await httpRequest(outbound.ports.out!, { path, headers: { 'x-sidecar-hop': '1' } });
      assert.equal(r.status, 200, `${path}: ${r.body}`);
    }
    assert.equal(seenBy(plain, '/direct/hop').headers['x-sidecar-hop'], undefined, 'a plain app upstream never sees the marker');
    assert.equal(seenBy(app, '/h2c/hop').headers['x-sidecar-hop'], undefined, 'stripped by the inbound sidecar (h2c)');
    assert.equal(seenBy(app, '/tls/hop').headers['x-sidecar-hop'], undefined, 'stripped by the inbound sidecar (h2)');
    // Straight to the inbound sidecar too: whoever sends it, it stops there.
    const r = await httpRequest(inbound.ports.h2c!, { path: '/straight/hop', headers: { 'x-sidecar-hop': '1' } });
    assert.equal(r.status, 200);
    assert.equal(seenBy(app, '/straight/hop').headers['x-sidecar-hop'], undefined);
    for (const q of [...app.requests, ...plain.requests]) assert.equal(q.headers['x-sidecar-hop'], undefined, q.url);
  });

  for (const kind of ['h2c', 'tls'] as const) {
    it(`${kind}: a 3 s budget on the outbound route reaches the far app as what is left of it, not the far route's 15 s`, { timeout: 15_000 }, async () => {
      const r = await httpRequest(outbound.ports.out!, { path: `/${kind}/short/budget` });
      assert.equal(r.status, 200, r.body);
      const left = Number(seenBy(app, `/${kind}/short/budget`).headers['x-sidecar-timeout']);
      assert.ok(left <= 3000 && left > 2000, `the far app was told ${left} ms`);
    });

    it(`${kind}: a far app slower than the 3 s budget gets the caller a 504 after about 3 s`, { timeout: 15_000 }, async () => {
      const t0 = performance.now();
      const r = await httpRequest(outbound.ports.out!, { path: `/${kind}/short/slow`, timeoutMs: 10_000 });
      const took = performance.now() - t0;
      assert.equal(r.status, 504, r.body);
      assert.equal(r.headers['x-sidecar-flag'], 'UT');
      assert.ok(took >= 2800 && took < 3900, `answered after ${Math.round(took)} ms`);
      // The inbound sidecar ran out of the same budget, not its route's 15 s: it answered 504 naming the caller's
      // deadline, or (when the outbound sidecar's own timer fired a moment sooner, on a busy machine) saw it cancelled.
      const far = await accessLogFor(inbound, `/${kind}/short/slow`);
      assert.ok(Number(far.duration_ms) < 3900, `the inbound sidecar held it ${String(far.duration_ms)} ms`);
      if (far.response_flag === 'UT') assert.match(String(far.error), /caller deadline, x-sidecar-timeout: \d+/);
      else assert.equal(far.response_flag, 'DC', JSON.stringify(far));
    });
  }

  it('an explicit protocol: http1 toward a sidecar over mTLS: the marker, the deadline and the identities still cross', { timeout: 15_000 }, async () => {
    const r = await httpRequest(outbound.ports.out!, { path: '/h1/short/budget' });
    assert.equal(r.status, 200, r.body);
    const seen = seenBy(app, '/h1/short/budget');
    const left = Number(seen.headers['x-sidecar-timeout']);
    assert.ok(left <= 3000 && left > 2000, `the far app was told ${left} ms`);
    assert.equal(seen.headers['x-sidecar-hop'], undefined);
    const near = await accessLogFor(outbound, '/h1/short/budget');
    const far = await accessLogFor(inbound, '/h1/short/budget');
    assert.equal(far.protocol, 'HTTP/1.1');
    assert.equal(far.peer_identity, WEB);
    assert.equal(near.upstream_identity, API);
  });

  it('without the marker the inbound sidecar ignores x-sidecar-timeout, unless the route allows it', { timeout: 15_000 }, async () => {
    await httpRequest(inbound.ports.h2c!, { path: '/plain/budget', headers: { 'x-sidecar-timeout': '500' } });
    const ignored = Number(seenBy(app, '/plain/budget').headers['x-sidecar-timeout']);
    assert.ok(ignored > 14_000 && ignored <= 15_000, `told ${ignored} ms: the route's own 15 s`);
    await httpRequest(inbound.ports.h2c!, { path: '/allowed/budget', headers: { 'x-sidecar-timeout': '500' } });
    assert.ok(Number(seenBy(app, '/allowed/budget').headers['x-sidecar-timeout']) <= 500, 'timeout_header_allowed: true trusts anyone');
    // On a listener without TLS the marker counts as is (h2c between sidecars).
    await httpRequest(inbound.ports.h2c!, { path: '/marked/budget', headers: { 'x-sidecar-timeout': '500', 'x-sidecar-hop': '1' } });
    assert.ok(Number(seenBy(app, '/marked/budget').headers['x-sidecar-timeout']) <= 500, 'the marker on a cleartext listener is trusted');
  });

  it('hop_marker: ignore never trusts the marker: an app cannot pass a deadline off as a sidecar\'s', { timeout: 15_000 }, async () => {
    await httpRequest(outbound.ports.out!, { path: '/direct/ignored', headers: { 'x-sidecar-timeout': '500', 'x-sidecar-hop': '1' } });
    const seen = seenBy(plain, '/direct/ignored');
    assert.ok(Number(seen.headers['x-sidecar-timeout']) > 14_000, `told ${seen.headers['x-sidecar-timeout']} ms`);
    assert.equal(seen.headers['x-sidecar-hop'], undefined);
  });

  it('on a listener that verifies client certificates the marker counts only from a peer with a verified identity', { timeout: 15_000 }, async () => {
    const call = (path: string, withCert: boolean): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = https.request(
          {
            host: '127.0.0.1',
            port: inbound.ports['optional-cert']!,
            servername: 'localhost',
            ca: caPem,
            path,
            headers: { 'x-sidecar-timeout': '500', 'x-sidecar-hop': '1' },
            agent: false,
            ...(withCert ? { cert: web.certPem, key: web.keyPem } : {}),
          },
          (res) => {
            res.resume();
            res.once('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
        req.once('error', reject);
        req.end();
      });
    assert.equal(await call('/anonymous/budget', false), 200);
    assert.ok(Number(seenBy(app, '/anonymous/budget').headers['x-sidecar-timeout']) > 14_000, 'no certificate, no trust');
    assert.equal(await call('/identified/budget', true), 200);
    assert.ok(Number(seenBy(app, '/identified/budget').headers['x-sidecar-timeout']) <= 500, 'a verified identity is trusted');
    const far = await accessLogFor(inbound, '/identified/budget');
    assert.equal(far.peer_identity, WEB);
  });

  it('both access logs share the request id; each names the other side\'s SPIFFE ID (null over h2c)', { timeout: 15_000 }, async () => {
    const id = 'mesh-hop-identity-check';
    const r = await httpRequest(outbound.ports.out!, { path: '/tls/ids', headers: { 'x-request-id': id } });
    assert.equal(r.status, 200, r.body);
    const near = await accessLogFor(outbound, '/tls/ids');
    const far = await accessLogFor(inbound, '/tls/ids');
    assert.equal(near.request_id, id);
    assert.equal(far.request_id, id);
    assert.equal(far.listener, 'mtls');
    assert.equal(far.peer_identity, WEB, "the inbound sidecar names the outbound one's verified identity");
    assert.equal(far.upstream_identity, null, 'the app behind it speaks plain HTTP');
    assert.equal(near.upstream_identity, API, "the outbound sidecar names the inbound one's verified identity");
    assert.equal(near.peer_identity, null, 'the app called it without TLS');
    assert.equal(far.protocol, 'HTTP/2');

    const generated = await httpRequest(outbound.ports.out!, { path: '/h2c/ids' });
    assert.equal(generated.status, 200);
    const nearH2c = await accessLogFor(outbound, '/h2c/ids');
    const farH2c = await accessLogFor(inbound, '/h2c/ids');
    assert.equal(farH2c.request_id, nearH2c.request_id, 'an id the outbound sidecar generated is the one the inbound one logs');
    assert.equal(farH2c.protocol, 'HTTP/2');
    assert.deepEqual([nearH2c.peer_identity, nearH2c.upstream_identity, farH2c.peer_identity, farH2c.upstream_identity], [null, null, null, null]);
  });
});
