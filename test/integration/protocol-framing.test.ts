// HTTP framing through the sidecar: chunked bodies both ways, trailers (HTTP/1.1, HTTP/2, from an h2c upstream, and
// request trailers towards both kinds of upstream),
// Expect: 100-continue (including a 413 that must come without a 100), and bodiless HEAD / 204 / 304 on keep-alive.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { curl } from '../helpers/client.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startH2Upstream, startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { connectH2, h2Request, RawConnection } from '../helpers/proto-http.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('protocol: framing', () => {
  let upstream: TestUpstream;
  let h2up: Awaited<ReturnType<typeof startH2Upstream>>;
  let sidecar: RunningSidecar;
  const h2Seen: Array<{ headers: Record<string, unknown>; body: Buffer; trailers: Record<string, unknown> | undefined }> = [];
  let port = 0;
  const opened: RawConnection[] = [];
  const open = async (): Promise<RawConnection> => {
    const c = await RawConnection.open(port);
    opened.push(c);
    return c;
  };

  before(async () => {
    upstream = await startUpstream((req, res, body) => {
      const url = req.url ?? '/';
      if (url.startsWith('/echo-chunked')) {
        // Answer chunked (no content-length), in several writes spread over a few ticks.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-got-bytes': String(body.length) });
        const third = Math.ceil(body.length / 3);
        res.write(body.subarray(0, third));
        setTimeout(() => {
          res.write(body.subarray(third, 2 * third));
          setTimeout(() => res.end(body.subarray(2 * third)), 20);
        }, 20);
        return;
      }
      if (url.startsWith('/trailers')) {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum, x-status' });
        res.write('first part;');
        setTimeout(() => {
          res.addTrailers({ 'x-checksum': 'abc123', 'x-status': 'done' });
          res.end('second part');
        }, 20);
        return;
      }
      if (url.startsWith('/req-trailers')) {
        const text = JSON.stringify({ body: body.toString('latin1'), trailers: req.rawTrailers });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      if (url.startsWith('/head')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1234' });
        res.end(req.method === 'HEAD' ? undefined : 'x'.repeat(1234));
        return;
      }
      if (url.startsWith('/no-content')) {
        res.writeHead(204, { 'x-kind': 'no-content' });
        res.end();
        return;
      }
      if (url.startsWith('/not-modified')) {
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60' });
        res.end();
        return;
      }
      const text = JSON.stringify({ method: req.method, url, bytes: body.length, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    h2up = await startH2Upstream((stream, headers) => {
      const chunks: Buffer[] = [];
      let trailers: Record<string, unknown> | undefined;
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.once('trailers', (t: Record<string, unknown>) => (trailers = { ...t }));
      stream.on('end', () => {
        h2Seen.push({ headers: { ...headers }, body: Buffer.concat(chunks), trailers });
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'all good' }));
        stream.write(Buffer.from([0, 0, 0, 0, 3, 1, 2, 3])); // a gRPC-style length-prefixed message
        stream.end();
      });
    });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { name: grpc, match: { prefix: /grpc }, cluster: h2app }
      - { name: limited, match: { prefix: /limited }, cluster: app, max_request_body: 1KiB }
      - { name: all, match: { prefix: / }, cluster: app }
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
  - name: h2app
    protocol: h2c
    endpoints: ["${h2up.address}"]
`);
    port = sidecar.ports.in!;
  });
  after(async () => {
    for (const c of opened) c.close();
    await sidecar?.stop();
    await upstream?.close();
    await h2up?.close();
  });

  it('passes a chunked request body and a chunked (no content-length) response body intact', { timeout: 30_000 }, async () => {
    const c = await open();
    // ~1 MiB body in chunks of varying size, written in several bursts.
    const payload = randomBytes(1024 * 1024 + 333);
    await c.write('POST /echo-chunked HTTP/1.1\r\nHost: app.local\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n');
    let off = 0;
    let i = 0;
    while (off < payload.length) {
      const n = Math.min(payload.length - off, [1, 17, 4096, 65_536, 100_000][i++ % 5]!);
      await c.write(Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), payload.subarray(off, off + n), Buffer.from('\r\n')]));
      off += n;
      if (i % 10 === 0) await sleep(5);
    }
    await c.write('0\r\n\r\n');
    const res = await c.readResponse({ timeoutMs: 15_000 });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-got-bytes'], String(payload.length), 'upstream got the whole body');
    assert.equal(res.chunked, true, `response should stay chunked: ${res.headerLines.join(' | ')}`);
    assert.equal(res.headers['content-length'], undefined);
    assert.ok(res.body.equals(payload), `response body differs (got ${res.body.length} bytes, sent ${payload.length})`);
    const seen = upstream.requests.find((r) => r.url === '/echo-chunked');
    assert.ok(seen);
    assert.ok(seen.body.equals(payload), 'upstream received the exact bytes');
    assert.equal(seen.headers['transfer-encoding'], 'chunked', 'a body of unknown length is streamed chunked to the upstream');
    assert.equal(seen.headers['content-length'], undefined);
    // The connection stays usable after a chunked exchange.
    await c.write('GET /after-chunked HTTP/1.1\r\nHost: app.local\r\n\r\n');
    const next = await c.readResponse();
    assert.equal(next.status, 200);
    assert.equal((JSON.parse(next.body.toString()) as { url: string }).url, '/after-chunked');
  });

  it('passes upstream response trailers to an HTTP/1.1 client after the last chunk', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write('GET /trailers HTTP/1.1\r\nHost: app.local\r\nTE: trailers\r\n\r\n');
    const res = await c.readResponse();
    assert.equal(res.status, 200);
    assert.equal(res.chunked, true);
    assert.equal(res.body.toString(), 'first part;second part');
    const wire = res.raw.toString('latin1');
    assert.match(wire, /\r\n0\r\n(?:[^\r\n]+\r\n)*x-checksum: abc123\r\n/i, `trailer lines after the 0-chunk: ${JSON.stringify(wire.slice(-200))}`);
    assert.equal(res.trailers['x-checksum'], 'abc123');
    assert.equal(res.trailers['x-status'], 'done');
  });

  it('passes upstream response trailers to an HTTP/2 client', { timeout: 20_000 }, async () => {
    const session = await connectH2(port);
    try {
      const r = await h2Request(session, { ':path': '/trailers', te: 'trailers' });
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'first part;second part');
      assert.ok(r.trailers, 'HTTP/2 client got a trailers frame');
      assert.equal(r.trailers['x-checksum'], 'abc123');
      assert.equal(r.trailers['x-status'], 'done');
    } finally {
      session.destroy();
    }
  });

  it('passes gRPC-style trailers from an h2c upstream cluster to an HTTP/2 client', { timeout: 20_000 }, async () => {
    const session = await connectH2(port);
    try {
      const msg = Buffer.from([0, 0, 0, 0, 2, 9, 9]);
      const r = await h2Request(
        session,
        { ':method': 'POST', ':path': '/grpc/pkg.Svc/Call', 'content-type': 'application/grpc', te: 'trailers' },
        msg,
      );
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-type'], 'application/grpc');
      assert.deepEqual([...r.body], [0, 0, 0, 0, 3, 1, 2, 3]);
      assert.ok(r.trailers, 'HTTP/2 client got a trailers frame');
      assert.equal(r.trailers['grpc-status'], '0');
      assert.equal(r.trailers['grpc-message'], 'all good');
      const seen = h2Seen.at(-1);
      assert.ok(seen);
      assert.deepEqual([...seen.body], [...msg]);
      assert.equal(seen.headers.te, 'trailers', 'TE: trailers is passed to a gRPC upstream');
    } finally {
      session.destroy();
    }
  });

  const TRAILERS_REQUEST =
    'transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: abc123\r\nhost: evil.example\r\nauthorization: Bearer late\r\nx-Status: done\r\n\r\n';

  it('forwards the trailers of a chunked HTTP/1.1 upload to an HTTP/1.1 upstream, without framing or routing fields', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write(`POST /req-trailers HTTP/1.1\r\nHost: app.local\r\n${TRAILERS_REQUEST}`);
    const res = await c.readResponse();
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.body.toString()) as { body: string; trailers: string[] };
    assert.equal(seen.body, 'hello');
    assert.deepEqual(seen.trailers, ['x-checksum', 'abc123', 'x-status', 'done']);
  });

  it('forwards HTTP/1.1 request trailers to an h2c upstream as a trailers frame', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write(`POST /grpc/upload HTTP/1.1\r\nHost: app.local\r\n${TRAILERS_REQUEST}`);
    const res = await c.readResponse();
    assert.equal(res.status, 200);
    const seen = h2Seen.at(-1);
    assert.ok(seen);
    assert.equal(seen.body.toString(), 'hello');
    assert.equal(seen.trailers?.['x-checksum'], 'abc123');
    assert.equal(seen.trailers?.['x-status'], 'done');
    assert.equal(seen.trailers?.host, undefined);
    assert.equal(seen.trailers?.authorization, undefined);
  });

  it('rejects a Content-Length in the trailers of a chunked upload with 400, sending nothing upstream', { timeout: 20_000 }, async () => {
    const before = upstream.requests.length;
    const c = await open();
    await c.write('POST /req-trailers HTTP/1.1\r\nHost: app.local\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\ncontent-length: 5\r\n\r\n');
    const res = await c.readResponse();
    assert.equal(res.status, 400);
    await sleep(100);
    assert.equal(upstream.requests.length, before);
  });

  it('forwards an HTTP/2 client\'s request trailers to an HTTP/1.1 upstream as a chunked body\'s trailer', { timeout: 20_000 }, async () => {
    const session = await connectH2(port);
    try {
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/req-trailers' }, { waitForTrailers: true });
        req.once('wantTrailers', () => req.sendTrailers({ 'x-checksum': 'h2sum', authorization: 'Bearer late' }));
        let status = 0;
        let body = '';
        req.on('response', (h) => (status = Number(h[':status'])));
        req.setEncoding('utf8').on('data', (d: string) => (body += d));
        req.on('end', () => resolve({ status, body }));
        req.on('error', reject);
        req.end('from h2');
      });
      assert.equal(res.status, 200);
      const seen = JSON.parse(res.body) as { body: string; trailers: string[] };
      assert.equal(seen.body, 'from h2');
      assert.deepEqual(seen.trailers, ['x-checksum', 'h2sum']);
    } finally {
      session.destroy();
    }
  });

  it('passes trailers from an h2c upstream cluster to an HTTP/1.1 client', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write('POST /grpc/pkg.Svc/Other HTTP/1.1\r\nHost: app.local\r\nTE: trailers\r\nContent-Type: application/grpc\r\nContent-Length: 5\r\n\r\n');
    await c.write(Buffer.from([0, 0, 0, 0, 0]));
    const res = await c.readResponse();
    assert.equal(res.status, 200);
    assert.equal(res.chunked, true);
    assert.deepEqual([...res.body], [0, 0, 0, 0, 3, 1, 2, 3]);
    assert.equal(res.trailers['grpc-status'], '0', `trailer lines: ${JSON.stringify(res.trailerLines)}`);
    assert.equal(res.trailers['grpc-message'], 'all good');
  });

  it('answers Expect: 100-continue with 100 before the body, then forwards the body (raw client)', { timeout: 20_000 }, async () => {
    const c = await open();
    const body = Buffer.alloc(4096, 'e');
    await c.write(`POST /expect HTTP/1.1\r\nHost: app.local\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
    // A well-behaved client waits for the 100 before sending the body.
    const interim = await c.readResponse({ timeoutMs: 5000 });
    assert.equal(interim.status, 100, `expected 100 Continue first, got ${interim.statusLine}`);
    await c.write(body);
    const res = await c.readResponse();
    assert.equal(res.status, 200);
    const j = JSON.parse(res.body.toString()) as { url: string; bytes: number };
    assert.equal(j.url, '/expect');
    assert.equal(j.bytes, body.length, 'the upstream received the whole body');
  });

  it('answers Expect: 100-continue for curl with a >1 KiB body', { timeout: 20_000 }, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'proto-expect-'));
    const file = path.join(dir, 'body.bin');
    writeFileSync(file, Buffer.alloc(3000, 'c'));
    const r = await curl(['-v', '-H', 'Expect: 100-continue', '--expect100-timeout', '10', '--data-binary', `@${file}`, `http://127.0.0.1:${port}/expect-curl`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /< HTTP\/1\.1 100 Continue/);
    assert.match(r.stderr, /< HTTP\/1\.1 200/);
    const j = JSON.parse(r.stdout) as { url: string; bytes: number };
    assert.equal(j.url, '/expect-curl');
    assert.equal(j.bytes, 3000);
  });

  it('answers 413 without any 100 Continue when Content-Length is over the route body limit, and sends nothing upstream', { timeout: 20_000 }, async () => {
    const before = upstream.requests.length;
    const beforeConns = upstream.connections();
    const c = await open();
    await c.write('POST /limited/upload HTTP/1.1\r\nHost: app.local\r\nContent-Type: text/plain\r\nContent-Length: 4096\r\nExpect: 100-continue\r\n\r\n');
    const first = await c.readResponse({ timeoutMs: 5000 });
    assert.equal(first.status, 413, `expected 413 first, got ${first.statusLine}`);
    assert.equal(first.headers['x-sidecar-flag'], 'TL');
    // Nothing may follow: in particular no late "100 Continue" inviting the body.
    const extra = (await c.idle(500)).toString('latin1');
    assert.equal(extra, '', `bytes after the 413: ${JSON.stringify(extra)}`);
    await sleep(100);
    assert.equal(upstream.requests.filter((r) => r.url.startsWith('/limited')).length, 0, 'upstream saw no request');
    assert.equal(upstream.requests.length, before);
    assert.equal(upstream.connections(), beforeConns, 'no upstream connection was opened for it');
  });

  it('answers HEAD with the upstream content-length and no body, keeping the connection usable', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write('HEAD /head HTTP/1.1\r\nHost: app.local\r\n\r\n');
    const res = await c.readResponse({ method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], '1234');
    assert.equal(res.headers['transfer-encoding'], undefined);
    assert.equal((await c.idle(200)).length, 0, `no body bytes may follow a HEAD response: ${JSON.stringify(c.pending.toString('latin1'))}`);
    assert.equal(upstream.requests.findLast((r) => r.url === '/head')?.method, 'HEAD');
    await c.write('GET /after-head HTTP/1.1\r\nHost: app.local\r\n\r\n');
    const next = await c.readResponse();
    assert.equal(next.status, 200);
    assert.equal((JSON.parse(next.body.toString()) as { url: string }).url, '/after-head');
  });

  it('answers 204 with no body, keeping the connection usable', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write('DELETE /no-content HTTP/1.1\r\nHost: app.local\r\n\r\n');
    const res = await c.readResponse();
    assert.equal(res.status, 204);
    assert.equal(res.headers['x-kind'], 'no-content');
    assert.equal(res.headers['content-length'], undefined);
    assert.equal(res.headers['transfer-encoding'], undefined);
    assert.equal((await c.idle(200)).length, 0, `no body bytes may follow a 204: ${JSON.stringify(c.pending.toString('latin1'))}`);
    await c.write('GET /after-204 HTTP/1.1\r\nHost: app.local\r\n\r\n');
    const next = await c.readResponse();
    assert.equal(next.status, 200);
    assert.equal((JSON.parse(next.body.toString()) as { url: string }).url, '/after-204');
  });

  it('answers 304 with no body, keeping the connection usable', { timeout: 20_000 }, async () => {
    const c = await open();
    await c.write('GET /not-modified HTTP/1.1\r\nHost: app.local\r\nIf-None-Match: "v1"\r\n\r\n');
    const res = await c.readResponse();
    assert.equal(res.status, 304);
    assert.equal(res.headers.etag, '"v1"');
    assert.equal(res.headers['transfer-encoding'], undefined);
    assert.equal((await c.idle(200)).length, 0, `no body bytes may follow a 304: ${JSON.stringify(c.pending.toString('latin1'))}`);
    await c.write('GET /after-304 HTTP/1.1\r\nHost: app.local\r\n\r\n');
    const next = await c.readResponse();
    assert.equal(next.status, 200);
    assert.equal((JSON.parse(next.body.toString()) as { url: string }).url, '/after-304');
  });
});
