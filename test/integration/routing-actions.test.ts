// Route actions and request/response edits: redirect, direct_response, prefix_rewrite, host_rewrite, and header
// add/set/remove as seen by the upstream and by the client.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { curl, parseCurlI, rawRequest } from '../helpers/client.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, rawValues } from '../helpers/strict-net.js';
import { startUpstream, type SeenRequest, type TestUpstream } from '../helpers/upstream.js';

describe('route actions and header edits', () => {
  let echo: TestUpstream;
  let sidecar: RunningSidecar;
  let port: number;

  before(async () => {
    echo = await startUpstream((req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
      const text = JSON.stringify({ url: req.url, host: req.headers.host, bytes: body.length });
      res.writeHead(200, [
        'content-type', 'application/json',
        'content-length', String(Buffer.byteLength(text)),
        'x-up-remove', 'secret',
        'x-up-set', 'old',
        'x-up-add', 'from-upstream',
        'x-up-keep', 'kept',
      ]);
      res.end(text);
    });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { name: redir_prefix, match: { prefix: /old/ }, redirect: { prefix_rewrite: /new/, status: 302 } }
      - { name: redir_https, match: { prefix: /secure }, redirect: { scheme: https, host: secure.example.com } }
      - { name: redir_path, match: { exact: /moved }, redirect: { path: /here, status: 308 } }
      - { name: redir_port, match: { exact: /port }, redirect: { host: other.example.com, port: 8443, scheme: https, status: 307 } }
      - name: maint
        match: { prefix: /maint }
        direct_response:
          status: 503
          body: "down for maintenance"
          headers: { x-reason: maintenance, retry-after: "120" }
      - { name: teapot, match: { exact: /teapot }, direct_response: { status: 418, body: "short and stout" } }
      - { name: empty, match: { exact: /empty }, direct_response: { status: 204 } }
      - { name: rewrite, match: { prefix: /api/ }, prefix_rewrite: /v2/, cluster: echo }
      - { name: strip, match: { prefix: /strip }, prefix_rewrite: /, cluster: echo }
      - { name: host_rw, match: { prefix: /hostrw }, host_rewrite: internal.svc.local, cluster: echo }
      - name: req_headers
        match: { prefix: /reqh }
        request_headers:
          add: { x-added: from-proxy }
          set: { x-set: new }
          remove: [x-secret]
        cluster: echo
      - name: res_headers
        match: { prefix: /resh }
        response_headers:
          add: { x-up-add: from-proxy, x-new: proxy }
          set: { x-up-set: new }
          remove: [x-up-remove]
        cluster: echo
      - { name: plain, match: { prefix: / }, cluster: echo }
clusters:
  - { name: echo, endpoints: ["${echo.address}"] }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    await echo.close();
  });

  const lastSeen = (): SeenRequest => echo.requests[echo.requests.length - 1]!;

  describe('redirect', () => {
    it('302 with prefix_rewrite keeps host, port, rest of path and query', async () => {
      const before = echo.requests.length;
      const res = await httpRequest(port, { path: '/old/a/b?x=1&y=2', headers: { host: 'shop.example.com:8080' } });
      assert.equal(res.status, 302);
      assert.equal(res.headers.location, 'http://shop.example.com:8080/new/a/b?x=1&y=2');
      assert.equal(echo.requests.length, before, 'a redirect must not reach the upstream');
    });
    it('301 (default) to https and another host drops the original port', async () => {
      const res = await httpRequest(port, { path: '/secure/x', headers: { host: 'shop.example.com:8080' } });
      assert.equal(res.status, 301);
      assert.equal(res.headers.location, 'https://secure.example.com/secure/x');
    });
    it('308 with path replacement', async () => {
      const res = await httpRequest(port, { path: '/moved', headers: { host: 'shop.example.com' } });
      assert.equal(res.status, 308);
      assert.match(String(res.headers.location), /^http:\/\/shop\.example\.com\/here(\?|$)/);
    });
    it('307 with explicit scheme, host and non-default port', async () => {
      const res = await httpRequest(port, { path: '/port', headers: { host: 'shop.example.com' } });
      assert.equal(res.status, 307);
      assert.equal(res.headers.location, 'https://other.example.com:8443/port');
    });
    it('curl sees the redirect status and Location', async () => {
      const r = parseCurlI((await curl(['-i', '-H', 'Host: shop.example.com', `http://127.0.0.1:${port}/old/z`])).stdout);
      assert.equal(r.status, 302);
      assert.equal(r.headers.location, 'http://shop.example.com/new/z');
    });
  });

  describe('direct_response', () => {
    it('answers with the configured status, body and headers', async () => {
      const before = echo.requests.length;
      const res = await httpRequest(port, { path: '/maint/x', headers: { host: 'app.local' } });
      assert.equal(res.status, 503);
      assert.equal(res.body, 'down for maintenance');
      assert.equal(res.headers['x-reason'], 'maintenance');
      assert.equal(res.headers['retry-after'], '120');
      assert.equal(res.headers['content-length'], String(Buffer.byteLength('down for maintenance')));
      assert.equal(res.headers['x-sidecar-flag'], undefined, 'a configured response is not a proxy failure');
      assert.equal(echo.requests.length, before);
    });
    it('418 with a text body gets a text content-type', async () => {
      const res = await httpRequest(port, { path: '/teapot', headers: { host: 'app.local' } });
      assert.equal(res.status, 418);
      assert.equal(res.body, 'short and stout');
      assert.match(String(res.headers['content-type']), /^text\/plain/);
    });
    it('204 without a body and without Content-Length (RFC 9110 §8.6)', async () => {
      const res = await httpRequest(port, { path: '/empty', headers: { host: 'app.local' } });
      assert.equal(res.status, 204);
      assert.equal(res.body, '');
      const raw = await rawRequest(port, 'GET /empty HTTP/1.1\r\nHost: app.local\r\nConnection: close\r\n\r\n', 5000);
      assert.equal(raw.status, 204);
      assert.doesNotMatch(raw.data, /\r\ncontent-length:/i, `a 204 must not carry Content-Length:\n${raw.data}`);
    });
    it('drains a request body and keeps the connection usable', async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const a = await httpRequest(port, { method: 'POST', path: '/teapot', headers: { host: 'app.local' }, body: 'z'.repeat(100_000), agent });
        assert.equal(a.status, 418);
        const b = await httpRequest(port, { path: '/plain', headers: { host: 'app.local' }, agent });
        assert.equal(b.status, 200);
        assert.equal((JSON.parse(b.body) as { url: string }).url, '/plain');
      } finally {
        agent.destroy();
      }
    });
  });

  describe('rewrites seen by the upstream', () => {
    it('prefix_rewrite replaces the matched prefix and keeps the query', async () => {
      const res = await httpRequest(port, { path: '/api/users/7?full=1', headers: { host: 'app.local' } });
      assert.equal(res.status, 200);
      assert.equal(lastSeen().url, '/v2/users/7?full=1');
    });
    it('prefix_rewrite to "/" strips the prefix', async () => {
      await httpRequest(port, { path: '/strip/a/b', headers: { host: 'app.local' } });
      assert.equal(lastSeen().url, '/a/b');
      await httpRequest(port, { path: '/strip', headers: { host: 'app.local' } });
      assert.equal(lastSeen().url, '/');
    });
    it('host_rewrite replaces Host; without it Host passes through', async () => {
      await httpRequest(port, { path: '/hostrw/x', headers: { host: 'public.example.com' } });
      assert.equal(lastSeen().headers.host, 'internal.svc.local');
      assert.equal(lastSeen().url, '/hostrw/x');
      await httpRequest(port, { path: '/plain', headers: { host: 'public.example.com:8080' } });
      assert.equal(lastSeen().headers.host, 'public.example.com:8080');
    });
  });

  describe('header edits', () => {
    it('request_headers add/set/remove are applied before the upstream sees the request', async () => {
      await httpRequest(port, {
        path: '/reqh',
        headers: { host: 'app.local', 'x-added': 'from-client', 'x-set': 'old', 'x-secret': 'token', 'x-other': 'kept' },
      });
      const seen = lastSeen();
      assert.deepEqual(rawValues(seen.rawHeaders, 'x-added'), ['from-client', 'from-proxy']);
      assert.deepEqual(rawValues(seen.rawHeaders, 'x-set'), ['new']);
      assert.deepEqual(rawValues(seen.rawHeaders, 'x-secret'), []);
      assert.deepEqual(rawValues(seen.rawHeaders, 'x-other'), ['kept']);
    });
    it('request_headers set adds the header when the client did not send it', async () => {
      await httpRequest(port, { path: '/reqh', headers: { host: 'app.local' } });
      const seen = lastSeen();
      assert.deepEqual(rawValues(seen.rawHeaders, 'x-set'), ['new']);
      assert.deepEqual(rawValues(seen.rawHeaders, 'x-added'), ['from-proxy']);
    });
    it('routes without edits forward client headers unchanged', async () => {
      await httpRequest(port, { path: '/plain', headers: { host: 'app.local', 'x-secret': 'token' } });
      assert.deepEqual(rawValues(lastSeen().rawHeaders, 'x-secret'), ['token']);
      assert.deepEqual(rawValues(lastSeen().rawHeaders, 'x-added'), []);
    });
    it('response_headers add/set/remove are applied before the client sees the response', async () => {
      const res = await httpRequest(port, { path: '/resh', headers: { host: 'app.local' } });
      assert.equal(res.status, 200);
      assert.deepEqual(rawValues(res.rawHeaders, 'x-up-remove'), []);
      assert.deepEqual(rawValues(res.rawHeaders, 'x-up-set'), ['new']);
      assert.deepEqual(rawValues(res.rawHeaders, 'x-up-add'), ['from-upstream', 'from-proxy']);
      assert.deepEqual(rawValues(res.rawHeaders, 'x-new'), ['proxy']);
      assert.deepEqual(rawValues(res.rawHeaders, 'x-up-keep'), ['kept']);
    });
    it('without response edits the upstream headers arrive as sent', async () => {
      const res = await httpRequest(port, { path: '/plain', headers: { host: 'app.local' } });
      assert.deepEqual(rawValues(res.rawHeaders, 'x-up-remove'), ['secret']);
      assert.deepEqual(rawValues(res.rawHeaders, 'x-up-set'), ['old']);
    });
  });
});
