// Protocol bridging: HTTP/2 clients to an HTTP/1.1 upstream, and HTTP/1.1 clients to an h2c (prior knowledge) upstream
// cluster, with and without request bodies.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type http2 from 'node:http2';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { curl } from '../helpers/client.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startH2Upstream, startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { connectH2, h2Request } from '../helpers/proto-http.js';

/** Lets a test check side effects before rethrowing the exchange's failure. */
async function settle<T>(p: Promise<T>): Promise<{ unwrap(): T }> {
  try {
    const v = await p;
    return { unwrap: () => v };
  } catch (err) {
    return {
      unwrap: () => {
        throw err;
      },
    };
  }
}

const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');

interface H1Echo {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  sha1: string;
}
interface H2Echo {
  method: string;
  path: string;
  authority: string;
  scheme: string;
  headers: Record<string, string | string[]>;
  bytes: number;
  sha1: string;
}

function h1Request(
  port: number,
  opts: { method: string; path: string; headers?: http.OutgoingHttpHeaders; body?: Buffer; chunked?: boolean },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { ...opts.headers };
    if (opts.body && !opts.chunked) headers['content-length'] = String(opts.body.length);
    const req = http.request({ host: '127.0.0.1', port, method: opts.method, path: opts.path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error('HTTP/1.1 request timed out')));
    req.on('error', reject);
    if (opts.body && opts.chunked) {
      // Several writes without a length: node sends Transfer-Encoding: chunked.
      const third = Math.ceil(opts.body.length / 3);
      req.write(opts.body.subarray(0, third));
      req.write(opts.body.subarray(third, 2 * third));
      req.end(opts.body.subarray(2 * third));
    } else req.end(opts.body);
  });
}

describe('protocol: HTTP/2 <-> HTTP/1.1 bridging', () => {
  let h1up: TestUpstream;
  let h2up: Awaited<ReturnType<typeof startH2Upstream>>;
  let sidecar: RunningSidecar;
  let port = 0;
  const sessions: http2.ClientHttp2Session[] = [];
  const session = async (): Promise<http2.ClientHttp2Session> => {
    const s = await connectH2(port);
    sessions.push(s);
    return s;
  };

  before(async () => {
    h1up = await startUpstream((req, res, body) => {
      if (req.url === '/stream-echo') {
        // Echo the body back in three writes without a content-length.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-upstream': 'h1' });
        const third = Math.ceil(body.length / 3);
        res.write(body.subarray(0, third));
        setTimeout(() => {
          res.write(body.subarray(third, 2 * third));
          setTimeout(() => res.end(body.subarray(2 * third)), 20);
        }, 20);
        return;
      }
      const text = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bytes: body.length, sha1: sha1(body) });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-upstream': 'h1' });
      res.end(text);
    });
    h2up = await startH2Upstream((stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        const plain: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':') && v !== undefined) plain[k] = v;
        const text = JSON.stringify({
          method: headers[':method'],
          path: headers[':path'],
          authority: headers[':authority'],
          scheme: headers[':scheme'],
          headers: plain,
          bytes: body.length,
          sha1: sha1(body),
        });
        if (headers[':path']?.startsWith('/h2up/stream')) {
          // No content-length: the HTTP/1.1 client must get it chunked.
          stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-upstream': 'h2' });
          stream.write('part-1;');
          setTimeout(() => stream.end('part-2'), 20);
          return;
        }
        stream.respond({ ':status': 200, 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-upstream': 'h2' });
        stream.end(text);
      });
    });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { name: to-h2, match: { prefix: /h2up }, cluster: h2app }
      - { name: to-h1, match: { prefix: / }, cluster: h1app }
clusters:
  - name: h1app
    endpoints: ["${h1up.address}"]
  - name: h2app
    protocol: h2c
    endpoints: ["${h2up.address}"]
`);
    port = sidecar.ports.in!;
  });
  after(async () => {
    for (const s of sessions) s.destroy();
    await sidecar?.stop();
    await h1up?.close();
    await h2up?.close();
  });

  it('HTTP/2 client -> HTTP/1.1 upstream: GET', { timeout: 20_000 }, async () => {
    const s = await session();
    const r = await h2Request(s, { ':path': '/get?x=1', ':authority': 'svc.local', 'x-custom': 'abc' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-upstream'], 'h1');
    const j = JSON.parse(r.body.toString()) as H1Echo;
    assert.equal(j.method, 'GET');
    assert.equal(j.url, '/get?x=1');
    assert.equal(j.headers.host, 'svc.local', ':authority becomes Host');
    assert.equal(j.headers['x-custom'], 'abc');
    assert.equal(j.bytes, 0);
  });

  it('HTTP/2 client -> HTTP/1.1 upstream: POST with content-length body', { timeout: 20_000 }, async () => {
    const s = await session();
    const body = randomBytes(200 * 1024);
    const exchange = await settle(
      h2Request(s, { ':method': 'POST', ':path': '/post', 'content-type': 'application/octet-stream', 'content-length': String(body.length) }, body),
    );
    // What reached the upstream is checked first, so a response that never ends does not hide it.
    const seen = h1up.requests.findLast((r) => r.url === '/post');
    assert.ok(seen, 'the POST reached the upstream');
    assert.equal(seen.method, 'POST');
    assert.ok(seen.body.equals(body), 'upstream received the body intact');
    assert.equal(seen.headers['content-length'], String(body.length));
    const r = exchange.unwrap();
    assert.equal(r.status, 200);
    const j = JSON.parse(r.body.toString()) as H1Echo;
    assert.equal(j.bytes, body.length);
    assert.equal(j.sha1, sha1(body));
  });

  it('HTTP/2 client -> HTTP/1.1 upstream: POST without content-length (streamed)', { timeout: 20_000 }, async () => {
    const s = await session();
    const body = randomBytes(70_000);
    const exchange = await settle(h2Request(s, { ':method': 'POST', ':path': '/post-nolen', 'content-type': 'application/octet-stream' }, body));
    const seen = h1up.requests.findLast((r) => r.url === '/post-nolen');
    assert.ok(seen, 'the POST reached the upstream');
    assert.ok(seen.body.equals(body), 'upstream received the body intact');
    const r = exchange.unwrap();
    assert.equal(r.status, 200);
    const j = JSON.parse(r.body.toString()) as H1Echo;
    assert.equal(j.bytes, body.length);
    assert.equal(j.sha1, sha1(body));
  });

  it('HTTP/2 client (curl) -> HTTP/1.1 upstream: POST with a streamed response arrives complete', { timeout: 20_000 }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'proto-h2-'));
    const file = path.join(dir, 'body.bin');
    const body = randomBytes(30_000);
    writeFileSync(file, body);
    const out = path.join(dir, 'out.bin');
    const r = await curl(
      ['--http2-prior-knowledge', '--data-binary', `@${file}`, '-o', out, '-w', '%{http_code} %{http_version}', `http://127.0.0.1:${port}/stream-echo`],
      { timeoutMs: 5000 },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '200 2');
    const seen = h1up.requests.findLast((x) => x.url === '/stream-echo');
    assert.ok(seen?.body.equals(body), 'upstream received the body intact');
    const got = readFileSync(out);
    assert.equal(got.length, body.length, `curl received ${got.length} of ${body.length} echoed bytes`);
    assert.ok(got.equals(body), 'echoed body intact');
  });

  it('HTTP/1.1 client -> h2c upstream: GET, with a streamed (no content-length) response', { timeout: 20_000 }, async () => {
    const r = await h1Request(port, { method: 'GET', path: '/h2up/get?y=2', headers: { host: 'svc.local:8080', 'x-custom': 'def' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-upstream'], 'h2');
    const j = JSON.parse(r.body.toString()) as H2Echo;
    assert.equal(j.method, 'GET');
    assert.equal(j.path, '/h2up/get?y=2');
    assert.equal(j.authority, 'svc.local:8080', 'Host becomes :authority');
    assert.equal(j.headers['x-custom'], 'def');
    assert.equal(j.bytes, 0);

    const streamed = await h1Request(port, { method: 'GET', path: '/h2up/stream', headers: { host: 'svc.local' } });
    assert.equal(streamed.status, 200);
    assert.equal(streamed.headers['transfer-encoding'], 'chunked');
    assert.equal(streamed.body.toString(), 'part-1;part-2');
  });

  it('HTTP/1.1 client -> h2c upstream: POST with content-length and chunked bodies', { timeout: 20_000 }, async () => {
    const body = randomBytes(300 * 1024);
    const r = await h1Request(port, { method: 'POST', path: '/h2up/post', headers: { host: 'svc.local', 'content-type': 'application/octet-stream' }, body });
    assert.equal(r.status, 200);
    const j = JSON.parse(r.body.toString()) as H2Echo;
    assert.equal(j.method, 'POST');
    assert.equal(j.bytes, body.length);
    assert.equal(j.sha1, sha1(body));
    assert.equal(j.headers['transfer-encoding'], undefined, 'no HTTP/1.1 framing headers over HTTP/2');
    assert.equal(j.headers.connection, undefined);

    const chunkedBody = randomBytes(50_000);
    const c = await h1Request(port, { method: 'PUT', path: '/h2up/put', headers: { host: 'svc.local' }, body: chunkedBody, chunked: true });
    assert.equal(c.status, 200);
    const cj = JSON.parse(c.body.toString()) as H2Echo;
    assert.equal(cj.method, 'PUT');
    assert.equal(cj.bytes, chunkedBody.length);
    assert.equal(cj.sha1, sha1(chunkedBody));
    assert.equal(cj.headers['transfer-encoding'], undefined);
  });

  it('HTTP/1.1 client -> h2c upstream: keep-alive connection reused for several requests', { timeout: 20_000 }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 5; i++) {
        const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: `/h2up/seq/${i}`, agent, headers: { 'content-length': '3' } }, (res) => {
            let b = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (b += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
          });
          req.on('error', reject);
          req.end('abc');
        });
        assert.equal(r.status, 200);
        assert.equal((JSON.parse(r.body) as H2Echo).path, `/h2up/seq/${i}`);
      }
      assert.ok(h2up.sessions() <= 2, `h2c upstream sessions: ${h2up.sessions()}`);
    } finally {
      agent.destroy();
    }
  });
});
