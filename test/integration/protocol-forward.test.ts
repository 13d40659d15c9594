// Forward-proxy mode: absolute-form requests (curl -x and env http_proxy), host-matched routes to a cluster, CONNECT
// tunnels (raw and curl -p), and 403 FP for destinations outside forward.allowed_hosts / connect_ports.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { curl, parseCurlI } from '../helpers/client.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startRawUpstream, startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { RawConnection, waitForLogLine } from '../helpers/proto-http.js';

/** No proxy settings from the environment may leak into curl; tests set exactly what they need. */
const NO_PROXY_ENV: NodeJS.ProcessEnv = { http_proxy: '', HTTP_PROXY: '', https_proxy: '', HTTPS_PROXY: '', all_proxy: '', ALL_PROXY: '', no_proxy: '', NO_PROXY: '' };

describe('protocol: forward proxy mode', () => {
  let upstream: TestUpstream;
  let service: TestUpstream;
  let echo: Awaited<ReturnType<typeof startRawUpstream>>;
  let sidecar: RunningSidecar;
  let proxy = '';
  let port = 0;
  const opened: RawConnection[] = [];

  before(async () => {
    upstream = await startUpstream();
    service = await startUpstream((req, res, body) => {
      const text = JSON.stringify({ service: 'myservice', method: req.method, url: req.url, host: req.headers.host, bytes: body.length });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    echo = await startRawUpstream((socket) => socket.pipe(socket));
    sidecar = await startSidecar(`
listeners:
  - name: fwd
    port: 0
    mode: forward
    forward:
      allow_passthrough: true
      allowed_hosts: ["127.0.0.1"]
      connect_ports: [${echo.port}, ${upstream.port}]
    routes:
      - { name: mysvc, match: { hosts: ["myservice"] }, cluster: svc }
  - name: inb
    port: 0
    routes:
      - { name: app, match: { prefix: / }, cluster: plain }
clusters:
  - name: plain
    endpoints: ["${upstream.address}"]
  - name: svc
    endpoints: ["${service.address}"]
`);
    port = sidecar.ports.fwd!;
    proxy = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    for (const c of opened) c.close();
    await sidecar?.stop();
    await upstream?.close();
    await service?.close();
    await echo?.close();
  });

  it('passes an absolute-form request (curl -x) through to an allowed host', { timeout: 20_000 }, async () => {
    const r = await curl(['-i', '-x', proxy, `http://127.0.0.1:${upstream.port}/x?via=flag`], { env: NO_PROXY_ENV });
    assert.equal(r.code, 0, r.stderr);
    const res = parseCurlI(r.stdout);
    assert.equal(res.status, 200, r.stdout);
    const j = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    assert.equal(j.url, '/x?via=flag', 'the upstream gets origin-form');
    assert.equal(j.headers.host, `127.0.0.1:${upstream.port}`);
    assert.equal(j.headers['proxy-connection'], undefined);
    assert.equal(j.headers['x-forwarded-for'], undefined, 'pass-through adds no X-Forwarded-For (forward.passthrough_headers)');
    const line = await waitForLogLine(sidecar, (l) => l.path === '/x?via=flag');
    assert.equal(line.status, 200);
    assert.equal(line.upstream, upstream.address);
  });

  it('is used by a client configured only through the http_proxy / HTTP_PROXY environment', { timeout: 20_000 }, async () => {
    const r = await curl(['-i', `http://127.0.0.1:${upstream.port}/env-driven`], {
      env: { ...NO_PROXY_ENV, http_proxy: proxy, HTTP_PROXY: proxy },
    });
    assert.equal(r.code, 0, r.stderr);
    const res = parseCurlI(r.stdout);
    assert.equal(res.status, 200, r.stdout);
    const j = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    assert.equal(j.url, '/env-driven');
    assert.match(j.headers.via ?? '', /^1\.1 [0-9a-f]{8}$/, 'the request went through the sidecar');
    const line = await waitForLogLine(sidecar, (l) => l.path === '/env-driven');
    assert.equal(line.listener, 'fwd');
    assert.equal(line.status, 200);
  });

  it('routes a forward request by host (match.hosts) to a cluster', { timeout: 20_000 }, async () => {
    const before = upstream.requests.length;
    const r = await curl(['-i', '-x', proxy, 'http://myservice/hello?a=1'], { env: NO_PROXY_ENV });
    assert.equal(r.code, 0, r.stderr);
    const res = parseCurlI(r.stdout);
    assert.equal(res.status, 200, r.stdout);
    const j = JSON.parse(res.body) as { service: string; method: string; url: string; host: string; bytes: number };
    assert.deepEqual(j, { service: 'myservice', method: 'GET', url: '/hello?a=1', host: 'myservice', bytes: 0 });
    const line = await waitForLogLine(sidecar, (l) => l.path === '/hello?a=1');
    assert.equal(line.route, 'mysvc');
    assert.equal(line.cluster, 'svc');
    assert.equal(line.upstream, service.address);

    const p = await curl(['-i', '-x', proxy, '--data-binary', 'payload', 'http://myservice/submit'], { env: NO_PROXY_ENV });
    assert.equal(p.code, 0, p.stderr);
    const pres = parseCurlI(p.stdout);
    assert.equal(pres.status, 200, p.stdout);
    assert.deepEqual(JSON.parse(pres.body), { service: 'myservice', method: 'POST', url: '/submit', host: 'myservice', bytes: 7 });
    assert.equal(upstream.requests.length, before, 'the pass-through upstream was not involved');
  });

  it('tunnels bytes both ways through CONNECT (raw socket to a TCP echo server)', { timeout: 20_000 }, async () => {
    const c = await RawConnection.open(port);
    opened.push(c);
    await c.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
    const res = await c.readResponse({ method: 'CONNECT' });
    assert.equal(res.status, 200, res.statusLine);
    // Everything after the 200 head belongs to the tunnel.
    const payload = randomBytes(256 * 1024);
    const collected: Buffer[] = [Buffer.from(c.pending)];
    c.socket.on('data', (d: Buffer) => collected.push(d));
    await c.write('hello tunnel\n');
    await c.write(payload);
    const want = Buffer.concat([Buffer.from('hello tunnel\n'), payload]);
    const deadline = Date.now() + 10_000;
    while (Buffer.concat(collected).length < want.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const got = Buffer.concat(collected);
    assert.equal(got.length, want.length, `echoed ${got.length} of ${want.length} bytes`);
    assert.ok(got.equals(want), 'echoed bytes intact and in order');
    c.close();
    const line = await waitForLogLine(sidecar, (l) => l.method === 'CONNECT' && l.authority === `127.0.0.1:${echo.port}`);
    assert.equal(line.status, 200);
  });

  it('carries an HTTP exchange through a CONNECT tunnel (curl -p -x)', { timeout: 20_000 }, async () => {
    const r = await curl(['-i', '-p', '-x', proxy, `http://127.0.0.1:${upstream.port}/tunneled`], { env: NO_PROXY_ENV });
    assert.equal(r.code, 0, r.stderr);
    const res = parseCurlI(r.stdout.replace(/^HTTP\/1\.1 200 Connection Established\r\n(?:[^\r\n]+\r\n)*\r\n/i, ''));
    assert.equal(res.status, 200, r.stdout);
    const j = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    assert.equal(j.url, '/tunneled');
    assert.equal(j.headers['x-forwarded-for'], undefined, 'inside a tunnel the proxy does not touch the bytes');
  });

  it('answers a request that loops back to the proxy itself with 508 LD at once, not after a timeout', { timeout: 20_000 }, async () => {
    const started = Date.now();
    // Origin-form to the proxy's own address: passthrough sends it to 127.0.0.1:<its own port>, i.e. back to itself.
    const r = await curl(['-i', `http://127.0.0.1:${port}/self`], { env: NO_PROXY_ENV });
    const res = parseCurlI(r.stdout);
    assert.equal(res.status, 508, r.stdout);
    assert.equal(res.headers['x-sidecar-flag'], 'LD');
    assert.ok(Date.now() - started < 3000, `answered after ${Date.now() - started}ms`);
    await waitForLogLine(sidecar, (l) => l.path === '/self' && l.response_flag === 'LD');
    await waitForLogLine(sidecar, (l) => l.path === '/self' && l.response_flag !== 'LD');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sidecar.accessLog().filter((l) => l.path === '/self').length, 2, 'one hop through, one refused');
  });

  it('passes a Via header upstream: on pass-through an opaque pseudonym, not the sidecar and listener names', { timeout: 20_000 }, async () => {
    const r = await curl(['-i', '-x', proxy, '-H', 'via: 1.1 corporate-proxy', `http://127.0.0.1:${upstream.port}/via-check`], { env: NO_PROXY_ENV });
    assert.equal(parseCurlI(r.stdout).status, 200, r.stdout);
    const seen = upstream.requests.findLast((q) => q.url === '/via-check');
    assert.match(String(seen?.headers.via), /^1\.1 corporate-proxy, 1\.1 [0-9a-f]{8}$/);
  });

  it('lets a request pass from one listener to another of the same process (outbound to inbound): a hop, not a loop', { timeout: 20_000 }, async () => {
    const inbound = sidecar.ports.inb!;
    const r = await curl(['-i', '-x', proxy, `http://127.0.0.1:${inbound}/chain`], { env: NO_PROXY_ENV });
    assert.equal(parseCurlI(r.stdout).status, 200, r.stdout);
    const seen = upstream.requests.findLast((q) => q.url === '/chain');
    assert.match(String(seen?.headers.via), /^1\.1 [0-9a-f]{8}, 1\.1 sidecar-[0-9a-f]{8}\.inb$/);
  });

  it('refuses an absolute-form target with userinfo (user:pw@host) with 400, never guessing the host', { timeout: 20_000 }, async () => {
    const before = upstream.requests.length;
    const c = await RawConnection.open(port);
    opened.push(c);
    await c.write(`GET http://user:pw@127.0.0.1:${upstream.port}/u HTTP/1.1\r\nHost: 127.0.0.1:${upstream.port}\r\n\r\n`);
    const res = await c.readResponse();
    assert.equal(res.status, 400);
    assert.equal(upstream.requests.length, before);
  });

  it('refuses a pass-through request to a host not in allowed_hosts with 403 FP', { timeout: 20_000 }, async () => {
    const before = upstream.requests.length;
    const r = await curl(['-i', '-x', proxy, `http://not-allowed.example:${upstream.port}/nope`], { env: NO_PROXY_ENV });
    assert.equal(r.code, 0, r.stderr);
    const res = parseCurlI(r.stdout);
    assert.equal(res.status, 403, r.stdout);
    assert.equal(res.headers['x-sidecar-flag'], 'FP');
    assert.equal(upstream.requests.length, before);
  });

  it('refuses CONNECT to a host not in allowed_hosts, or to a port not in connect_ports, with 403 FP', { timeout: 20_000 }, async () => {
    const c1 = await RawConnection.open(port);
    opened.push(c1);
    await c1.write(`CONNECT not-allowed.example:${echo.port} HTTP/1.1\r\nHost: not-allowed.example:${echo.port}\r\n\r\n`);
    const r1 = await c1.readResponse();
    assert.equal(r1.status, 403, r1.statusLine);
    assert.equal(r1.headers['x-sidecar-flag'], 'FP');

    const c2 = await RawConnection.open(port);
    opened.push(c2);
    await c2.write(`CONNECT 127.0.0.1:${service.port} HTTP/1.1\r\nHost: 127.0.0.1:${service.port}\r\n\r\n`);
    const r2 = await c2.readResponse();
    assert.equal(r2.status, 403, r2.statusLine);
    assert.equal(r2.headers['x-sidecar-flag'], 'FP');
    assert.equal(service.requests.filter((r) => r.method === 'CONNECT').length, 0);
  });
});
