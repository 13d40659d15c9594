// Header hygiene through the sidecar: hop-by-hop request and response headers are not forwarded, X-Forwarded-* are
// appended / set, and x-request-id is generated when absent, kept when present, and logged.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { curl, parseCurlI } from '../helpers/client.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { connectH2, h2Request, RawConnection, UUID_RE, waitForLogLine } from '../helpers/proto-http.js';

interface Echo {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bytes: number;
}

describe('protocol: hop-by-hop and forwarding headers', () => {
  let upstream: TestUpstream;
  let sidecar: RunningSidecar;
  let port = 0;
  const opened: RawConnection[] = [];
  const open = async (): Promise<RawConnection> => {
    const c = await RawConnection.open(port);
    opened.push(c);
    return c;
  };
  const seen = (url: string): http.IncomingHttpHeaders => {
    const r = upstream.requests.findLast((x) => x.url === url);
    assert.ok(r, `upstream saw ${url}`);
    return r.headers;
  };

  before(async () => {
    upstream = await startUpstream((req, res, body) => {
      if (req.url === '/response-hop') {
        res.writeHead(200, [
          'Connection', 'x-foo, X-Bar',
          'X-Foo', 'foo-value',
          'X-Bar', 'bar-value',
          'Keep-Alive', 'timeout=7, max=99',
          'Proxy-Connection', 'keep-alive',
          'X-Kept', 'yes',
          'Content-Type', 'text/plain',
          'Content-Length', '2',
        ]);
        res.end('ok');
        return;
      }
      const text = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bytes: body.length });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes: [{ name: all, match: { prefix: / }, cluster: app }]
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
`);
    port = sidecar.ports.in!;
  });
  after(async () => {
    for (const c of opened) c.close();
    await sidecar?.stop();
    await upstream?.close();
  });

  it('does not forward hop-by-hop request headers (Connection-named, Keep-Alive, Proxy-*, TE, Upgrade)', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write(
      'GET /hop HTTP/1.1\r\n' +
        'Host: app.local\r\n' +
        'Connection: keep-alive, X-Custom-Hop, x-other-hop\r\n' +
        'X-Custom-Hop: secret-1\r\n' +
        'X-Other-Hop: secret-2\r\n' +
        'Keep-Alive: timeout=5, max=100\r\n' +
        'Proxy-Connection: keep-alive\r\n' +
        'TE: gzip, deflate\r\n' +
        'Proxy-Authorization: Basic dXNlcjpwYXNz\r\n' +
        'Upgrade: h2c\r\n' +
        'X-End-To-End: kept\r\n' +
        '\r\n',
    );
    const res = await c.readResponse();
    assert.equal(res.status, 200);
    const h = seen('/hop');
    for (const name of ['x-custom-hop', 'x-other-hop', 'keep-alive', 'proxy-connection', 'te', 'proxy-authorization', 'upgrade']) {
      assert.equal(h[name], undefined, `upstream must not see ${name}: ${JSON.stringify(h)}`);
    }
    assert.doesNotMatch(String(h.connection ?? ''), /x-custom-hop|x-other-hop/i);
    assert.equal(h['x-end-to-end'], 'kept');
    // The keep-alive connection is still usable.
    await c.write('GET /hop-2 HTTP/1.1\r\nHost: app.local\r\n\r\n');
    assert.equal((await c.readResponse()).status, 200);
  });

  it('forwards only "trailers" from a TE header', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write('GET /te HTTP/1.1\r\nHost: app.local\r\nTE: gzip, trailers\r\n\r\n');
    assert.equal((await c.readResponse()).status, 200);
    const te = seen('/te').te;
    assert.ok(te === undefined || te === 'trailers', `upstream TE must be absent or exactly "trailers", got ${JSON.stringify(te)}`);
  });

  it('treats Connection: close as hop-by-hop: the client connection closes, the header and its tokens are not forwarded', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write('GET /close HTTP/1.1\r\nHost: app.local\r\nConnection: close, X-Close-Hop\r\nX-Close-Hop: 1\r\n\r\n');
    const res = await c.readResponse();
    assert.equal(res.status, 200);
    assert.match(res.headers.connection ?? '', /close/i);
    assert.ok(await c.waitClosed(3000), 'the sidecar closes the client connection after answering');
    const h = seen('/close');
    assert.equal(h['x-close-hop'], undefined);
    assert.doesNotMatch(String(h.connection ?? ''), /close|x-close-hop/i, 'the client\'s Connection header is not forwarded');
  });

  it('does not forward an Upgrade header on a non-upgrade request', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write('GET /no-upgrade HTTP/1.1\r\nHost: app.local\r\nUpgrade: websocket\r\n\r\n');
    const res = await c.readResponse();
    assert.equal(res.status, 200);
    assert.equal(seen('/no-upgrade').upgrade, undefined);
  });

  it('appends to X-Forwarded-For and sets X-Forwarded-Proto and X-Forwarded-Host', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write(
      'GET /xff HTTP/1.1\r\nHost: app.local:8080\r\nX-Forwarded-For: 203.0.113.7, 198.51.100.2\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: spoofed.example\r\n\r\n',
    );
    assert.equal((await c.readResponse()).status, 200);
    const h = seen('/xff');
    assert.equal(h['x-forwarded-for'], '203.0.113.7, 198.51.100.2, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], 'app.local:8080');
    assert.equal(h.host, 'app.local:8080', 'Host is passed through');

    await c.write('GET /xff-new HTTP/1.1\r\nHost: app.local\r\n\r\n');
    assert.equal((await c.readResponse()).status, 200);
    const h2 = seen('/xff-new');
    assert.equal(h2['x-forwarded-for'], '127.0.0.1');
    assert.equal(h2['x-forwarded-proto'], 'http');
    assert.equal(h2['x-forwarded-host'], 'app.local');
  });

  it('sets X-Forwarded-* for HTTP/2 clients too', { timeout: 20_000 }, async () => {
    const session = await connectH2(port);
    try {
      const r = await h2Request(session, { ':path': '/xff-h2', ':authority': 'h2.local:9000', 'x-forwarded-for': '192.0.2.1' });
      assert.equal(r.status, 200);
      const h = (JSON.parse(r.body.toString()) as Echo).headers;
      assert.equal(h['x-forwarded-for'], '192.0.2.1, 127.0.0.1');
      assert.equal(h['x-forwarded-proto'], 'http');
      assert.equal(h['x-forwarded-host'], 'h2.local:9000');
    } finally {
      session.destroy();
    }
  });

  it('generates a UUID x-request-id when absent, keeps a given one, and logs the same id', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write('GET /rid-generated HTTP/1.1\r\nHost: app.local\r\n\r\n');
    assert.equal((await c.readResponse()).status, 200);
    const generated = seen('/rid-generated')['x-request-id'];
    assert.ok(typeof generated === 'string' && UUID_RE.test(generated), `generated id ${JSON.stringify(generated)} is a UUID`);
    const line1 = await waitForLogLine(sidecar, (l) => l.path === '/rid-generated');
    assert.equal(line1.request_id, generated);

    await c.write('GET /rid-given HTTP/1.1\r\nHost: app.local\r\nX-Request-Id: my-trace-0001\r\n\r\n');
    assert.equal((await c.readResponse()).status, 200);
    const given = upstream.requests.findLast((r) => r.url === '/rid-given')!;
    assert.equal(given.headers['x-request-id'], 'my-trace-0001');
    assert.equal(given.rawHeaders.filter((n, i) => i % 2 === 0 && n.toLowerCase() === 'x-request-id').length, 1, 'exactly one x-request-id upstream');
    const line2 = await waitForLogLine(sidecar, (l) => l.path === '/rid-given');
    assert.equal(line2.request_id, 'my-trace-0001');
  });

  it('logs requests that carry a body, with their x-request-id (generated and given)', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write('POST /rid-post-generated HTTP/1.1\r\nHost: app.local\r\nContent-Length: 5\r\n\r\nhello');
    assert.equal((await c.readResponse()).status, 200);
    const generated = seen('/rid-post-generated')['x-request-id'];
    assert.ok(typeof generated === 'string' && UUID_RE.test(generated), `generated id ${JSON.stringify(generated)} is a UUID`);
    await c.write('PUT /rid-post-given HTTP/1.1\r\nHost: app.local\r\nX-Request-Id: my-trace-0002\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    assert.equal((await c.readResponse()).status, 200);
    assert.equal(seen('/rid-post-given')['x-request-id'], 'my-trace-0002');
    const line1 = await waitForLogLine(sidecar, (l) => l.path === '/rid-post-generated').catch(() => {
      throw new Error(`no access-log line for a POST within 5s; sidecar stderr tail:\n${sidecar.stderr().slice(-1500)}`);
    });
    assert.equal(line1.request_id, generated);
    assert.equal(line1.status, 200);
    assert.equal(line1.method, 'POST');
    const line2 = await waitForLogLine(sidecar, (l) => l.path === '/rid-post-given');
    assert.equal(line2.request_id, 'my-trace-0002');
    assert.equal(sidecar.stderr().includes('uncaught exception'), false, `sidecar logged an uncaught exception:\n${sidecar.stderr()}`);
  });

  it('does not pass response hop-by-hop headers (Connection-named, Keep-Alive, Proxy-Connection) to the client', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write('GET /response-hop HTTP/1.1\r\nHost: app.local\r\n\r\n');
    const res = await c.readResponse();
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'ok');
    assert.equal(res.headers['x-kept'], 'yes');
    assert.equal(res.headers['x-foo'], undefined, `X-Foo (named by Connection) leaked: ${res.headerLines.join(' | ')}`);
    assert.equal(res.headers['x-bar'], undefined, `X-Bar (named by Connection) leaked: ${res.headerLines.join(' | ')}`);
    assert.equal(res.headers['proxy-connection'], undefined);
    assert.notEqual(res.headers['keep-alive'], 'timeout=7, max=99', 'the upstream\'s Keep-Alive is not passed on');
    assert.doesNotMatch(res.headers.connection ?? '', /x-foo|x-bar/i);
    // The downstream connection is unaffected.
    await c.write('GET /after-response-hop HTTP/1.1\r\nHost: app.local\r\n\r\n');
    assert.equal((await c.readResponse()).status, 200);
  });

  it('strips response hop-by-hop headers for HTTP/2 clients (which must never see connection-specific headers)', { timeout: 20_000 }, async () => {
    const session = await connectH2(port);
    try {
      const r = await h2Request(session, { ':path': '/response-hop' });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'ok');
      assert.equal(r.headers['x-kept'], 'yes');
      for (const name of ['x-foo', 'x-bar', 'connection', 'keep-alive', 'proxy-connection']) {
        assert.equal(r.headers[name], undefined, `${name} leaked to the HTTP/2 client`);
      }
    } finally {
      session.destroy();
    }
  });

  it('answers an Upgrade: h2c request (curl --http2 on http://) as plain HTTP/1.1, without upgrading or leaking hop-by-hop headers', { timeout: 20_000 }, async () => {
    const r = await curl(['-s', '-i', '--http2', `http://127.0.0.1:${port}/response-hop`]);
    const res = parseCurlI(r.stdout);
    assert.equal(res.status, 200, r.stdout);
    assert.equal(res.body, 'ok');
    assert.equal(res.headers['x-kept'], 'yes');
    assert.notEqual(res.headers['keep-alive'], 'timeout=7, max=99', 'the upstream\'s Keep-Alive is not passed on');
    assert.equal(res.headers['x-foo'], undefined);
    const h = seen('/response-hop');
    assert.equal(h.upgrade, undefined, 'Upgrade is not forwarded');
    assert.equal(h['http2-settings'], undefined, 'HTTP2-Settings is not forwarded');
    // With a body, and with keep-alive: curl sends two requests over one connection.
    const post = await curl(['-s', '--http2', '-d', 'hello h2c', `http://127.0.0.1:${port}/h2c-post`, `http://127.0.0.1:${port}/h2c-next`, '-w', ' connects=%{num_connects}']);
    assert.match(post.stdout, /"url":"\/h2c-post"[^]*"bytes":9[^]*connects=1[^]*"url":"\/h2c-next"[^]*connects=0/);
  });
});
