// Route matching: hosts (exact, *.wildcard), paths (exact, prefix, regex), methods, headers, query parameters,
// and first-match-wins ordering. Every route sends to its own upstream, which answers with its name.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { rawRequest } from '../helpers/client.js';
import { httpRequest, parseRawResponse } from '../helpers/strict-net.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const TARGETS = [
  'host_exact', 'host_wild', 'path_exact', 'path_prefix', 'path_regex', 'method_post_put', 'hdr_exact', 'hdr_regex',
  'hdr_present', 'hdr_absent', 'hdr_invert', 'query_exact', 'query_regex', 'query_present', 'first', 'second', 'all_of',
  'fallback',
] as const;
type Target = (typeof TARGETS)[number];

describe('route matching', () => {
  const upstreams = new Map<Target, TestUpstream>();
  let sidecar: RunningSidecar;
  let port: number;

  before(async () => {
    for (const t of TARGETS) {
      upstreams.set(
        t,
        await startUpstream((req: http.IncomingMessage, res: http.ServerResponse) => {
          const body = JSON.stringify({ target: t, url: req.url });
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
          res.end(body);
        }),
      );
    }
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { name: host_exact, match: { hosts: [exact.example.com] }, cluster: host_exact }
      - { name: host_wild, match: { hosts: ["*.wild.example.com"] }, cluster: host_wild }
      - { name: path_exact, match: { exact: /exact }, cluster: path_exact }
      - { name: path_prefix, match: { prefix: /prefix/ }, cluster: path_prefix }
      - { name: path_regex, match: { regex: "/items/[0-9]+" }, cluster: path_regex }
      - { name: method_post_put, match: { prefix: /method, methods: [POST, PUT] }, cluster: method_post_put }
      - { name: hdr_exact, match: { prefix: /hdr/exact, headers: [{ name: x-env, exact: canary }] }, cluster: hdr_exact }
      - { name: hdr_regex, match: { prefix: /hdr/regex, headers: [{ name: x-version, regex: "v[0-9]+" }] }, cluster: hdr_regex }
      - { name: hdr_present, match: { prefix: /hdr/present, headers: [{ name: x-debug, present: true }] }, cluster: hdr_present }
      - { name: hdr_absent, match: { prefix: /hdr/absent, headers: [{ name: x-debug, present: false }] }, cluster: hdr_absent }
      - { name: hdr_invert, match: { prefix: /hdr/invert, headers: [{ name: x-block, exact: "yes", invert: true }] }, cluster: hdr_invert }
      - { name: query_exact, match: { prefix: /q/exact, query: [{ name: v, exact: "2" }] }, cluster: query_exact }
      - { name: query_regex, match: { prefix: /q/regex, query: [{ name: id, regex: "[a-f]{3}" }] }, cluster: query_regex }
      - { name: query_present, match: { prefix: /q/present, query: [{ name: debug, present: true }] }, cluster: query_present }
      - { name: first, match: { prefix: /order/ }, cluster: first }
      - { name: second, match: { prefix: /order/deeper }, cluster: second }
      - name: all_of
        match:
          prefix: /all
          methods: [GET]
          headers: [{ name: x-a, exact: "1" }]
          query: [{ name: b, exact: "2" }]
        cluster: all_of
      - { name: fallback, match: { prefix: / }, cluster: fallback }
clusters:
${TARGETS.map((t) => `  - { name: ${t}, endpoints: ["${upstreams.get(t)!.address}"] }`).join('\n')}
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    for (const u of upstreams.values()) await u.close();
  });

  /** Which upstream served the request (and the URL it saw). */
  async function target(path: string, opts: { method?: string; host?: string; headers?: http.OutgoingHttpHeaders } = {}): Promise<Target> {
    const res = await httpRequest(port, {
      method: opts.method ?? 'GET',
      path,
      headers: { host: opts.host ?? 'app.local', ...opts.headers },
      body: opts.method === 'POST' || opts.method === 'PUT' ? 'x' : undefined,
    });
    assert.equal(res.status, 200, `${path}: ${res.status} ${res.body}`);
    return (JSON.parse(res.body) as { target: Target }).target;
  }

  describe('hosts', () => {
    it('exact host matches, ignoring case and port', async () => {
      assert.equal(await target('/anything', { host: 'exact.example.com' }), 'host_exact');
      assert.equal(await target('/anything', { host: 'EXACT.Example.COM' }), 'host_exact');
      assert.equal(await target('/anything', { host: 'exact.example.com:8080' }), 'host_exact');
    });
    it('exact host does not match other names', async () => {
      assert.equal(await target('/anything', { host: 'notexact.example.com' }), 'fallback');
      assert.equal(await target('/anything', { host: 'exact.example.com.evil' }), 'fallback');
      assert.equal(await target('/anything', { host: 'sub.exact.example.com' }), 'fallback');
    });
    it('an absolute-form target routes by its own host, not the Host header', async () => {
      const r = await rawRequest(port, 'GET http://exact.example.com/abs HTTP/1.1\r\nHost: other.example.com\r\nConnection: close\r\n\r\n', 5000);
      const res = parseRawResponse(r.data);
      assert.equal(res.status, 200, r.data.slice(0, 300));
      assert.equal((JSON.parse(res.body) as { target: string }).target, 'host_exact');
    });
    it('*.wildcard matches subdomains (with port) but not the bare domain', async () => {
      assert.equal(await target('/w', { host: 'a.wild.example.com' }), 'host_wild');
      assert.equal(await target('/w', { host: 'api.wild.example.com:9000' }), 'host_wild');
      assert.equal(await target('/w', { host: 'wild.example.com' }), 'fallback');
      assert.equal(await target('/w', { host: 'a.wild.example.org' }), 'fallback');
      assert.equal(await target('/w', { host: 'awild.example.com' }), 'fallback');
    });
  });

  describe('paths', () => {
    it('exact path matches only that path (query ignored)', async () => {
      assert.equal(await target('/exact'), 'path_exact');
      assert.equal(await target('/exact?x=1'), 'path_exact');
      assert.equal(await target('/exact/'), 'fallback');
      assert.equal(await target('/exactly'), 'fallback');
      assert.equal(await target('/EXACT'), 'fallback');
    });
    it('prefix matches paths starting with it', async () => {
      assert.equal(await target('/prefix/'), 'path_prefix');
      assert.equal(await target('/prefix/a/b?c=d'), 'path_prefix');
      assert.equal(await target('/prefix'), 'fallback');
      assert.equal(await target('/prefixx/a'), 'fallback');
    });
    it('regex matches the whole path, not a substring, and not the query', async () => {
      assert.equal(await target('/items/42'), 'path_regex');
      assert.equal(await target('/items/7?sort=asc'), 'path_regex');
      assert.equal(await target('/items/42/extra'), 'fallback');
      assert.equal(await target('/x/items/42'), 'fallback');
      assert.equal(await target('/items/abc'), 'fallback');
      assert.equal(await target('/items/?q=/items/1'), 'fallback');
    });
  });

  it('methods: listed methods match, others fall through', async () => {
    assert.equal(await target('/method', { method: 'POST' }), 'method_post_put');
    assert.equal(await target('/method', { method: 'PUT' }), 'method_post_put');
    assert.equal(await target('/method', { method: 'GET' }), 'fallback');
    assert.equal(await target('/method', { method: 'DELETE' }), 'fallback');
  });

  describe('headers', () => {
    it('exact value (case-sensitive value, case-insensitive name)', async () => {
      assert.equal(await target('/hdr/exact', { headers: { 'x-env': 'canary' } }), 'hdr_exact');
      assert.equal(await target('/hdr/exact', { headers: { 'X-ENV': 'canary' } }), 'hdr_exact');
      assert.equal(await target('/hdr/exact', { headers: { 'x-env': 'Canary' } }), 'fallback');
      assert.equal(await target('/hdr/exact', { headers: { 'x-env': 'canary2' } }), 'fallback');
      assert.equal(await target('/hdr/exact'), 'fallback');
    });
    it('regex matches the whole value', async () => {
      assert.equal(await target('/hdr/regex', { headers: { 'x-version': 'v2' } }), 'hdr_regex');
      assert.equal(await target('/hdr/regex', { headers: { 'x-version': 'v10' } }), 'hdr_regex');
      assert.equal(await target('/hdr/regex', { headers: { 'x-version': 'v2-beta' } }), 'fallback');
      assert.equal(await target('/hdr/regex', { headers: { 'x-version': 'xv2' } }), 'fallback');
      assert.equal(await target('/hdr/regex'), 'fallback');
    });
    it('present: true needs the header (any value, even empty)', async () => {
      assert.equal(await target('/hdr/present', { headers: { 'x-debug': '1' } }), 'hdr_present');
      assert.equal(await target('/hdr/present', { headers: { 'x-debug': '' } }), 'hdr_present');
      assert.equal(await target('/hdr/present'), 'fallback');
    });
    it('present: false needs the header absent', async () => {
      assert.equal(await target('/hdr/absent'), 'hdr_absent');
      assert.equal(await target('/hdr/absent', { headers: { 'x-debug': '1' } }), 'fallback');
    });
    it('invert: matches when the condition does not hold', async () => {
      assert.equal(await target('/hdr/invert'), 'hdr_invert');
      assert.equal(await target('/hdr/invert', { headers: { 'x-block': 'no' } }), 'hdr_invert');
      assert.equal(await target('/hdr/invert', { headers: { 'x-block': 'yes' } }), 'fallback');
    });
  });

  describe('query parameters', () => {
    it('exact value, anywhere in the query', async () => {
      assert.equal(await target('/q/exact?v=2'), 'query_exact');
      assert.equal(await target('/q/exact?a=1&v=2&z=3'), 'query_exact');
      assert.equal(await target('/q/exact?v=20'), 'fallback');
      assert.equal(await target('/q/exact?vv=2'), 'fallback');
      assert.equal(await target('/q/exact'), 'fallback');
    });
    it('regex matches the whole value', async () => {
      assert.equal(await target('/q/regex?id=abc'), 'query_regex');
      assert.equal(await target('/q/regex?id=abcd'), 'fallback');
      assert.equal(await target('/q/regex?id=xyz'), 'fallback');
    });
    it('present matches with or without a value', async () => {
      assert.equal(await target('/q/present?debug'), 'query_present');
      assert.equal(await target('/q/present?debug=0'), 'query_present');
      assert.equal(await target('/q/present?x=debug'), 'fallback');
    });
  });

  it('first match wins: an earlier broader route shadows a later narrower one', async () => {
    assert.equal(await target('/order/deeper/x'), 'first');
    assert.equal(await target('/order/x'), 'first');
    assert.equal(upstreams.get('second')!.requests.length, 0);
  });

  it('all conditions of one route must hold', async () => {
    const h = { 'x-a': '1' };
    assert.equal(await target('/all?b=2', { headers: h }), 'all_of');
    assert.equal(await target('/all?b=3', { headers: h }), 'fallback');
    assert.equal(await target('/all?b=2'), 'fallback');
    assert.equal(await target('/all?b=2', { method: 'POST', headers: h }), 'fallback');
  });

  it('the access log names the matched route', async () => {
    await target('/items/999');
    const end = Date.now() + 5000;
    let line: Record<string, unknown> | undefined;
    while (!(line = sidecar.accessLog().find((l) => l.path === '/items/999')) && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
    assert.ok(line);
    assert.equal(line.route, 'path_regex');
    assert.equal(line.cluster, 'path_regex');
  });
});
