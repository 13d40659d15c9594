// One slow client cannot starve everyone else: request-body idle timeout (408 SI), response-write timeout (DWT),
// per-downstream fairness in the upstream pool (503 UO), and the cause of a 504 that waited for a pooled connection (UQ).
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connectH2, waitForLogLine, waitUntil } from '../helpers/proto-http.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** Upstream routes: /big streams 1 MiB or ?size= bytes (with backpressure), /hold?ms=N sends the head then ends after N ms, else "ok". */
function slowApp(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/big') {
    const size = Number(url.searchParams.get('size') ?? 1 << 20);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    let sent = 0;
    const more = (): void => {
      while (sent < size) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', more);
          return;
        }
      }
      res.end();
    };
    more();
    res.on('close', () => res.off('drain', more));
    return;
  }
  if (url.pathname === '/hold') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('held ');
    const t = setTimeout(() => res.end('done'), Number(url.searchParams.get('ms') ?? 1000));
    res.on('close', () => clearTimeout(t));
    return;
  }
  reply(res, 200, 'ok');
}

/** A raw HTTP/1.1 upload that sends its head and one byte, then one more byte every `gapMs`; collects what comes back. */
function trickle(port: number, gapMs: number): { socket: net.Socket; data: () => string; closed: Promise<void> } {
  const socket = net.connect(port, '127.0.0.1');
  let data = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (data += d));
  socket.on('error', () => {});
  socket.write('POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: 30\r\n\r\nx');
  const timer = setInterval(() => {
    if (socket.writable) socket.write('x');
  }, gapMs);
  const closed = new Promise<void>((resolve) => socket.once('close', () => {
    clearInterval(timer);
    resolve();
  }));
  return { socket, data: () => data, closed };
}

describe('request body idle timeout (request_body_timeout)', () => {
  let upstream: TestUpstream;
  let sidecar: RunningSidecar;
  before(async () => {
    upstream = await startUpstream(slowApp);
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    limits: { request_body_timeout: 500ms }
    routes: [{ match: { prefix: / }, cluster: app, timeout: 0 }]
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
    pool: { max_connections: 4 }
`);
  });
  after(async () => {
    await sidecar.stop();
    await upstream.close();
  });

  it('cuts uploads trickling slower than the timeout with 408 SI, so a probe gets a pooled connection (a)', async () => {
    // As many tricklers as the pool has connections, each one byte per second: before, they held the pool for 30 s.
    const tricklers = Array.from({ length: 4 }, () => trickle(sidecar.ports.in!, 1000));
    try {
      await sleep(200);
      const started = Date.now();
      const probe = await httpRequest(sidecar.ports.in!, { path: '/probe', timeoutMs: 4000 });
      const took = Date.now() - started;
      assert.equal(probe.status, 200, `probe answered ${probe.status} ${probe.headers['x-sidecar-flag']} ${probe.headers['x-sidecar-error']}`);
      assert.equal(probe.body, 'ok');
      assert.ok(took < 3000, `probe took ${took} ms`);
      await Promise.race([Promise.all(tricklers.map((t) => t.closed)), sleep(4000)]);
      for (const t of tricklers) {
        assert.match(t.data(), /^HTTP\/1\.1 408 /, `trickler got: ${t.data().slice(0, 200)}`);
        assert.match(t.data(), /x-sidecar-flag: SI\r\n/i);
        assert.match(t.data(), /x-sidecar-error: no request body bytes from the downstream for 500ms/i);
        assert.match(t.data(), /connection: close\r\n/i);
        assert.equal(t.socket.destroyed || t.socket.readableEnded, true, 'connection closed after the 408');
      }
      const line = await waitForLogLine(sidecar, (l) => l.path === '/upload' && l.response_flag === 'SI');
      assert.equal(line.status, 408);
    } finally {
      for (const t of tricklers) t.socket.destroy();
    }
  });

  it('answers an HTTP/2 upload that stops sending with 408 SI and resets the request side', async () => {
    const session = await connectH2(sidecar.ports.in!);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/h2-upload', 'content-length': '100' }, { endStream: false });
      stream.write('abc');
      const started = Date.now();
      const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        stream.once('response', resolve);
        stream.once('error', reject);
        setTimeout(() => reject(new Error('no response within 3 s')), 3000);
      });
      assert.equal(head[':status'], 408);
      assert.equal(head['x-sidecar-flag'], 'SI');
      assert.ok(Date.now() - started < 2500);
      stream.resume();
      await new Promise<void>((resolve) => (stream.closed ? resolve() : stream.once('close', () => resolve())));
      const line = await waitForLogLine(sidecar, (l) => l.path === '/h2-upload');
      assert.equal(line.response_flag, 'SI');
      assert.equal(line.status, 408);
    } finally {
      session.destroy();
    }
  });

  it('does not count time the sidecar is not reading (the upload waits for a pooled connection) against the client', async () => {
    // Four held GETs fill the pool; an upload that sent its whole body while queued must not get 408.
    const held = Array.from({ length: 4 }, () => httpRequest(sidecar.ports.in!, { path: '/hold?ms=1200', timeoutMs: 5000 }));
    await sleep(150);
    const upload = await httpRequest(sidecar.ports.in!, { method: 'POST', path: '/queued-upload', body: 'x'.repeat(10), timeoutMs: 5000 });
    assert.equal(upload.status, 200, `${upload.status} ${upload.headers['x-sidecar-error']}`);
    for (const r of await Promise.all(held)) assert.equal(r.status, 200);
  });
});

describe('response write timeout (response_write_timeout) and fair pool handoff', () => {
  let upstream: TestUpstream;
  let sidecar: RunningSidecar;
  before(async () => {
    upstream = await startUpstream(slowApp);
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    limits: { response_write_timeout: 1s }
    routes:
      - { match: { exact: /whole }, direct_response: { status: 200, body: "${'w'.repeat(40_000)}" } }
      - { match: { prefix: / }, cluster: app, timeout: 10s }
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
    pool: { max_connections: 4 }
`);
  });
  after(async () => {
    await sidecar.stop();
    await upstream.close();
  });

  it('an HTTP/2 client with a zero window and many streams does not starve a normal client (b)', async () => {
    const attacker = await connectH2(sidecar.ports.in!, { initialWindowSize: 0 });
    const streams: http2.ClientHttp2Stream[] = [];
    try {
      for (let i = 0; i < 16; i++) {
        const s = attacker.request({ ':path': `/big?n=${i}` });
        s.on('error', () => {});
        s.pause();
        streams.push(s);
      }
      await waitUntil(() => upstream.requests.filter((r) => r.url.startsWith('/big')).length >= 4, 3000, 'the attacker to hold the pool');
      await sleep(100);
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        const probe = await httpRequest(sidecar.ports.in!, { path: `/probe-${i}`, timeoutMs: 5000 });
        const took = Date.now() - started;
        assert.equal(probe.status, 200, `probe ${i}: ${probe.status} ${probe.headers['x-sidecar-flag']} ${probe.headers['x-sidecar-error']}`);
        // One response_write_timeout at most: a first-come queue would have served the 12 queued stalled streams first.
        assert.ok(took < 2500, `probe ${i} took ${took} ms`);
      }
      const cut = await waitForLogLine(sidecar, (l) => String(l.path).startsWith('/big') && l.response_flag === 'DWT', 5000);
      assert.match(String(cut.error), /downstream read nothing for 1000ms/);
      assert.equal(cut.status, 200, 'the head had gone out');
      await waitUntil(() => streams.some((s) => s.closed && s.rstCode === http2.constants.NGHTTP2_CANCEL), 3000, 'a stalled stream reset');
    } finally {
      attacker.destroy();
    }
  });

  it('cuts an HTTP/2 stream whose whole (already complete) response waits behind a zero window', async () => {
    const session = await connectH2(sidecar.ports.in!, { initialWindowSize: 0 });
    try {
      const s = session.request({ ':path': '/whole' });
      s.on('error', () => {});
      s.pause();
      const line = await waitForLogLine(sidecar, (l) => l.path === '/whole', 5000);
      assert.equal(line.response_flag, 'DWT');
      await waitUntil(() => s.closed, 2000, 'the stream reset');
      assert.equal(s.rstCode, http2.constants.NGHTTP2_CANCEL);
    } finally {
      session.destroy();
    }
  });

  it('cuts an HTTP/1.1 client that stops reading a streamed response, and frees its pooled connection', async () => {
    const socket = net.connect(sidecar.ports.in!, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.pause();
    // More than the loopback socket buffers hold, so the sidecar's writes are pushed back once they are full.
    socket.write(`GET /big?size=${64 << 20} HTTP/1.1\r\nHost: app\r\n\r\n`);
    try {
      const line = await waitForLogLine(sidecar, (l) => l.path === `/big?size=${64 << 20}`, 8000);
      assert.equal(line.response_flag, 'DWT');
      assert.equal(line.status, 200);
      const probe = await httpRequest(sidecar.ports.in!, { path: '/after-h1', timeoutMs: 3000 });
      assert.equal(probe.status, 200);
    } finally {
      socket.destroy();
    }
  });
});

describe('reclaiming a connection a downstream over its share left unread (reclaim_stalled_after)', () => {
  let upstream: TestUpstream;
  let sidecar: RunningSidecar;
  before(async () => {
    upstream = await startUpstream(slowApp);
    // A write timeout far beyond the test: only the reclaim can free the pool in time.
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    limits: { response_write_timeout: 30s }
    routes: [{ match: { prefix: / }, cluster: app, timeout: 10s }]
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
    pool: { max_connections: 4, reclaim_stalled_after: 500ms }
`);
  });
  after(async () => {
    await sidecar.stop();
    await upstream.close();
  });

  it('a waiting downstream gets a connection cut from a zero-window client holding the whole pool', async () => {
    const attacker = await connectH2(sidecar.ports.in!, { initialWindowSize: 0 });
    try {
      for (let i = 0; i < 8; i++) {
        const s = attacker.request({ ':path': `/big?r=${i}` });
        s.on('error', () => {});
        s.pause();
      }
      await waitUntil(() => upstream.requests.filter((r) => r.url.startsWith('/big?r=')).length >= 4, 3000, 'the attacker to hold the pool');
      await sleep(100);
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        const probe = await httpRequest(sidecar.ports.in!, { path: `/reclaim-probe-${i}`, timeoutMs: 5000 });
        const took = Date.now() - started;
        assert.equal(probe.status, 200, `probe ${i}: ${probe.status} ${probe.headers['x-sidecar-flag']} ${probe.headers['x-sidecar-error']}`);
        // Without the reclaim the pool frees up only after the 30 s write timeout.
        assert.ok(took < 4000, `probe ${i} took ${took} ms`);
      }
      const cut = await waitForLogLine(sidecar, (l) => String(l.path).startsWith('/big?r=') && l.response_flag === 'DWT', 3000);
      assert.match(String(cut.error), /^response cut to free a pooled connection for another downstream: its downstream connection holds \d of 4 connections/);
    } finally {
      attacker.destroy();
    }
  });
});

describe('downstream fairness in the upstream pool (max_share_per_downstream)', () => {
  let upstream: TestUpstream;
  let sidecar: RunningSidecar;
  before(async () => {
    upstream = await startUpstream(slowApp);
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes: [{ match: { prefix: / }, cluster: app, timeout: 5s }]
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
    pool: { max_connections: 2 }
`);
  });
  after(async () => {
    await sidecar.stop();
    await upstream.close();
  });

  const h2get = (session: http2.ClientHttp2Session, path: string): Promise<{ status: number; flag: string | undefined; error: string | undefined; body: string }> =>
    new Promise((resolve, reject) => {
      const s = session.request({ ':path': path });
      let status = 0;
      let flag: string | undefined;
      let error: string | undefined;
      let body = '';
      s.setEncoding('utf8');
      s.on('response', (h) => {
        status = Number(h[':status']);
        flag = h['x-sidecar-flag'] as string | undefined;
        error = h['x-sidecar-error'] as string | undefined;
      });
      s.on('data', (d: string) => (body += d));
      s.on('end', () => resolve({ status, flag, error, body }));
      s.on('error', reject);
    });

  it('a lone downstream connection (the mesh case) still gets the whole pool and queues past it, never refused', async () => {
    const session = await connectH2(sidecar.ports.in!);
    try {
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => h2get(session, `/hold?ms=300&lone=${i}`)));
      for (const r of results) assert.equal(r.status, 200, `${r.status} ${r.flag} ${r.error}`);
    } finally {
      session.destroy();
    }
  });

  it('refuses a downstream over its share with 503 UO while another downstream waits, and serves the waiter next', async () => {
    const hog = await connectH2(sidecar.ports.in!);
    try {
      const held = [h2get(hog, '/hold?ms=1500&hog=1'), h2get(hog, '/hold?ms=1500&hog=2')];
      await waitUntil(() => upstream.requests.filter((r) => r.url.includes('hog=')).length >= 2, 3000, 'the hog to hold both connections');
      const waiterStarted = Date.now();
      const waiter = httpRequest(sidecar.ports.in!, { path: '/waiter', timeoutMs: 5000 });
      await sleep(150);
      const over = await h2get(hog, '/over-share');
      assert.equal(over.status, 503);
      assert.equal(over.flag, 'UO');
      assert.match(over.error ?? '', /downstream fairness: this downstream connection holds 2 of 2 connections to 127\.0\.0\.1:\d+ \(max_share_per_downstream 0\.5\) while another downstream waits/);
      const w = await waiter;
      assert.equal(w.status, 200);
      assert.ok(Date.now() - waiterStarted < 3000);
      for (const r of await Promise.all(held)) assert.equal(r.status, 200);
      const line = await waitForLogLine(sidecar, (l) => l.path === '/over-share');
      assert.equal(line.response_flag, 'UO');
    } finally {
      hog.destroy();
    }
  });
});

describe('a request that waited for a pooled connection past the route timeout (c)', () => {
  let upstream: TestUpstream;
  let sidecar: RunningSidecar;
  before(async () => {
    upstream = await startUpstream(slowApp);
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes: [{ match: { prefix: / }, cluster: app, timeout: 500ms }]
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
    pool: { max_connections: 1 }
`);
  });
  after(async () => {
    await sidecar.stop();
    await upstream.close();
  });

  it('answers 504 UQ with a cause that names the busy pool, not an upstream timeout', async () => {
    const holder = httpRequest(sidecar.ports.in!, { path: '/hold?ms=2000', timeoutMs: 5000 });
    await waitUntil(() => upstream.requests.some((r) => r.url.startsWith('/hold')), 3000, 'the holder to reach the upstream');
    const started = Date.now();
    const queued = await httpRequest(sidecar.ports.in!, { path: '/queued', timeoutMs: 5000 });
    const took = Date.now() - started;
    assert.equal(queued.status, 504);
    assert.equal(queued.headers['x-sidecar-flag'], 'UQ');
    assert.match(String(queued.headers['x-sidecar-error']), new RegExp(`^no upstream connection free: 1/1 in use for \\d+\\.\\d s \\(endpoint ${upstream.address.replace(/\./g, '\\.')}, route timeout 500ms\\)`));
    assert.ok(took >= 450 && took < 3000, `took ${took} ms`);
    assert.equal(upstream.requests.some((r) => r.url === '/queued'), false, 'never sent upstream');
    const line = await waitForLogLine(sidecar, (l) => l.path === '/queued');
    assert.equal(line.response_flag, 'UQ');
    assert.equal((await holder).status, 200);
  });
});

describe('slow uploads under contention (pool.reclaim_upload_min_rate)', () => {
  let upstream: TestUpstream;
  const start = (minRate: string): Promise<RunningSidecar> =>
    startSidecar(`
listeners:
  - name: in
    port: 0
    routes: [{ match: { prefix: / }, cluster: app, timeout: 0 }]
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
    pool: { max_connections: 4, reclaim_upload_min_rate: ${minRate} }
`);
  before(async () => {
    upstream = await startUpstream((_req, res) => reply(res, 200, 'ok')); // called once the whole body is in
  });
  after(async () => {
    await upstream.close();
  });

  it('a probe waiting behind uploads that trickle (each under its share, never idle) gets a connection cut from one of them', async () => {
    // The trial shape: every pooled connection carries an upload of a few bytes a second. request_body_timeout (60 s)
    // never fires and no downstream is over its share, so only the rate can tell these from real uploads.
    const sidecar = await start('500');
    const tricklers = Array.from({ length: 4 }, () => trickle(sidecar.ports.in!, 300));
    try {
      await sleep(300);
      const started = Date.now();
      const probe = await httpRequest(sidecar.ports.in!, { path: '/probe', timeoutMs: 6000 });
      const took = Date.now() - started;
      assert.equal(probe.status, 200, `probe answered ${probe.status} ${probe.headers['x-sidecar-flag']} ${probe.headers['x-sidecar-error']}`);
      assert.ok(took < 4000, `probe took ${took} ms`);
      const line = await waitForLogLine(sidecar, (l) => l.path === '/upload' && l.response_flag === 'SI');
      assert.equal(line.status, 408);
      assert.match(String(line.error), /under reclaim_upload_min_rate 500 bytes\/s/);
      const cut = tricklers.filter((t) => /^HTTP\/1\.1 408 /.test(t.data()));
      assert.ok(cut.length >= 1, 'at least one trickler was answered 408');
    } finally {
      for (const t of tricklers) t.socket.destroy();
      await sidecar.stop();
    }
  });

  it('without a waiter a slow upload is never cut', async () => {
    const sidecar = await start('500');
    const slow = net.connect(sidecar.ports.in!, '127.0.0.1');
    let data = '';
    slow.setEncoding('latin1').on('data', (d: string) => (data += d));
    try {
      slow.write('POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: 10\r\n\r\nx');
      for (let i = 1; i < 10; i++) {
        await sleep(300);
        slow.write('x');
      }
      await waitUntil(() => data.includes('\r\n\r\nok'), 3000, 'the upload answered');
      assert.match(data, /^HTTP\/1\.1 200 /);
    } finally {
      slow.destroy();
      await sidecar.stop();
    }
  });
});
