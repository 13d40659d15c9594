// HTTP/2 toward upstreams done properly, through the sidecar with real sockets: small SETTINGS honoured both ways,
// flow control that stalls a fast upstream for a slow client, GOAWAY'd
// streams replayed as never sent, RST_STREAM codes mapped to flags, PING keep-alive against a black-holed
// connection, session limits and idle expiry, and the session metrics.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { metricsText } from '../helpers/admin.js';
import { frame, FrameType, hpackLiterals, PREFACE, rstStreamFrame } from '../helpers/h2-frames.js';
import { CountingSink, patternSource, sampleRss, waitUntil } from '../helpers/proto-http.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor, httpRequest, sleep } from '../helpers/strict-net.js';

const MiB = 1024 * 1024;
const { NGHTTP2_NO_ERROR } = http2.constants;

interface H2Server {
  readonly server: http2.Http2Server;
  readonly address: string;
  /** TCP connections accepted so far. */
  connections: number;
  close(): Promise<void>;
}

async function startH2(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void, settings: http2.Settings = {}): Promise<H2Server> {
  const server = http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  const out: H2Server = {
    server,
    address: '',
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
  server.on('connection', () => out.connections++);
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    onStream(stream, headers);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (out as { address: string }).address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return out;
}

/** Streams `total` pattern bytes into `stream`, respecting backpressure; `accepted` counts bytes whose write completed. */
function pourInto(stream: http2.ServerHttp2Stream, total: number, counter: { accepted: number }): void {
  const src = patternSource(total);
  src.stream.on('data', (chunk: Buffer) => {
    const ok = stream.write(chunk, (err) => {
      if (!err) counter.accepted += chunk.length;
    });
    if (!ok) {
      src.stream.pause();
      stream.once('drain', () => src.stream.resume());
    }
  });
  src.stream.on('end', () => stream.end());
}

describe('HTTP/2 upstream: SETTINGS, flow control and backpressure', () => {
  let sidecar: RunningSidecar;
  let small: H2Server;
  let flood: H2Server;
  const flooded = { accepted: 0 };
  let floodStream: http2.ServerHttp2Stream | undefined;
  let sink: H2Server;
  let sunkBytes = 0;

  before(async () => {
    // Small windows and frames: every large body crosses many WINDOW_UPDATE round trips and 16 KiB frames.
    small = await startH2((stream, h) => {
      if (h[':method'] === 'POST') {
        const hash = createHash('sha1');
        let n = 0;
        stream.on('data', (c: Buffer) => {
          n += c.length;
          hash.update(c);
        });
        stream.on('end', () => {
          stream.respond({ ':status': 200 });
          stream.end(`${n} ${hash.digest('hex')}`);
        });
        return;
      }
      stream.respond({ ':status': 200 });
      patternSource(Number(h['x-size'])).stream.pipe(stream);
    }, { initialWindowSize: 16 * 1024, maxFrameSize: 16384 });
    flood = await startH2((stream) => {
      floodStream = stream;
      stream.respond({ ':status': 200 });
      pourInto(stream, 64 * MiB, flooded);
    });
    // Reads nothing of an upload.
    sink = await startH2((stream) => {
      stream.pause();
      stream.on('data', (c: Buffer) => (sunkBytes += c.length));
    });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { match: { prefix: /sink }, cluster: sink }
      - { match: { prefix: /small }, cluster: small }
      - { match: { prefix: /flood }, cluster: flood }
clusters:
  - { name: small, protocol: h2c, endpoints: ["${small.address}"] }
  - { name: flood, protocol: h2c, endpoints: ["${flood.address}"] }
  - { name: sink, protocol: h2c, endpoints: ["${sink.address}"] }
`);
  });

  after(async () => {
    await sidecar?.stop();
    await Promise.all([small?.close(), flood?.close(), sink?.close()]);
  });

  it('a peer advertising a 16 KiB window and 16 KiB frames gets 8 MiB each way intact', { timeout: 60_000 }, async () => {
    const port = sidecar.ports.in!;
    const size = 8 * MiB;
    const down = await new Promise<{ status: number; bytes: number; digest: string }>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/small/get', headers: { host: 'app.local', 'x-size': String(size) }, agent: false }, (res) => {
        const sinkStream = new CountingSink();
        res.pipe(sinkStream).on('finish', () => resolve({ status: res.statusCode!, bytes: sinkStream.bytes, digest: sinkStream.digest() }));
        res.on('error', reject);
      }).on('error', reject);
    });
    const want = patternSource(size);
    await new Promise<void>((resolve) => want.stream.on('data', () => {}).on('end', resolve));
    assert.equal(down.status, 200);
    assert.equal(down.bytes, size);
    assert.equal(down.digest, want.digest());

    const up = patternSource(size);
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/small/post', headers: { host: 'app.local' }, agent: false }, (r) => {
        let body = '';
        r.on('data', (c: Buffer) => (body += c.toString()));
        r.on('end', () => resolve({ status: r.statusCode!, body }));
      });
      req.on('error', reject);
      up.stream.pipe(req);
    });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.body, `${size} ${up.digest()}`);
  });

  it('a paused downstream reader stalls a 64 MiB upstream response: bounded upstream writes and sidecar RSS', { timeout: 60_000 }, async () => {
    const port = sidecar.ports.in!;
    const rss = sampleRss(sidecar.proc.pid!);
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write('GET /flood HTTP/1.1\r\nhost: app.local\r\n\r\n');
    let received = 0;
    socket.on('data', (d: Buffer) => (received += d.length));
    await waitUntil(() => received > 0, 10_000, 'the response head');
    socket.pause();
    // Let everything that can be buffered fill up.
    await sleep(2000);
    const stalledAt = flooded.accepted;
    await sleep(1000);
    const stalledLater = flooded.accepted;
    const { peak, samples } = await rss.stop();
    const baseline = samples[0]!;
    assert.ok(stalledAt < 24 * MiB, `upstream wrote ${(stalledAt / MiB).toFixed(1)} MiB of 64 while the client read none`);
    assert.ok(stalledLater - stalledAt < 1 * MiB, `upstream kept writing: ${stalledAt} then ${stalledLater}`);
    assert.ok(peak - baseline < 48, `sidecar RSS grew ${peak - baseline} MiB (baseline ${baseline}, peak ${peak})`);
    // Reading resumes the flow to the end.
    socket.resume();
    await waitUntil(() => received > 64 * MiB, 40_000, 'the whole body');
    assert.equal(flooded.accepted, 64 * MiB);
    socket.destroy();
    assert.ok(floodStream !== undefined);
  });
  it('an upstream that reads nothing stalls 64 MiB uploads from 4 clients: bounded client writes and sidecar RSS', { timeout: 60_000 }, async () => {
    const port = sidecar.ports.in!;
    const rss = sampleRss(sidecar.proc.pid!);
    const total = 64 * MiB;
    // Several connections at once: the listener's first-bytes sniffing once raced node:http's socket pause (about
    // one connection in three buffered its whole body), so one upload alone might miss it.
    const uploads = await Promise.all(Array.from({ length: 4 }, async () => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      const state = { socket, written: 0 };
      socket.write(`POST /sink HTTP/1.1\r\nhost: app.local\r\ncontent-length: ${total}\r\n\r\n`);
      const src = patternSource(total);
      src.stream.on('data', (chunk: Buffer) => {
        const ok = socket.write(chunk, (err) => {
          if (!err) state.written += chunk.length;
        });
        if (!ok) {
          src.stream.pause();
          socket.once('drain', () => src.stream.resume());
        }
      });
      return state;
    }));
    await sleep(3000);
    const stalled = uploads.map((u) => u.written);
    await sleep(1000);
    const { peak, samples } = await rss.stop();
    const baseline = samples[0]!;
    uploads.forEach((u, i) => {
      assert.ok(stalled[i]! < 24 * MiB, `client ${i} wrote ${(stalled[i]! / MiB).toFixed(1)} MiB of 64 to a sidecar whose upstream reads nothing (RSS ${baseline} -> ${peak} MiB)`);
      assert.ok(u.written - stalled[i]! < MiB, `client ${i} kept writing: ${stalled[i]} then ${u.written}`);
      u.socket.destroy();
    });
    assert.ok(peak - baseline < 64, `sidecar RSS grew ${peak - baseline} MiB (baseline ${baseline}, peak ${peak})`);
    assert.ok(sunkBytes < MiB);
  });
});

describe('HTTP/2 upstream: GOAWAY, RST_STREAM, keep-alive and session limits', () => {
  let sidecar: RunningSidecar;
  let goaway: H2Server;
  let resets: H2Server;
  let limited: H2Server;
  let idle: H2Server;
  let proxied: H2Server;
  let passthrough: PassThroughProxy;
  let midReset: net.Server;
  let limitedOpen = 0;
  let limitedPeak = 0;
  let refusedOnce = false;
  const idleClosed: number[] = [];

  before(async () => {
    // The first session takes 6 streams, then says GOAWAY with the second one's id and answers the first two.
    goaway = await startH2((stream, h) => {
      const session = stream.session as http2.ServerHttp2Session & { held?: Array<() => void> };
      const answer = (): void => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          if (stream.destroyed) return;
          stream.respond({ ':status': 200 });
          stream.end(`${h[':path']} ${Buffer.concat(chunks).toString()}`);
        });
      };
      if (goaway.connections > 1) return answer();
      (session.held ??= []).push(answer);
      if (session.held.length === 6) {
        session.goaway(NGHTTP2_NO_ERROR, 3); // streams 1 and 3 were accepted
        session.held[0]!();
        session.held[1]!();
      }
    });
    resets = await startH2((stream, h) => {
      const path = h[':path'] ?? '';
      const code = path.includes('refused') ? http2.constants.NGHTTP2_REFUSED_STREAM
        : path.includes('internal') ? http2.constants.NGHTTP2_INTERNAL_ERROR
        : path.includes('calm') ? http2.constants.NGHTTP2_ENHANCE_YOUR_CALM
        : http2.constants.NGHTTP2_CANCEL;
      if (path.includes('once')) {
        if (refusedOnce) {
          stream.respond({ ':status': 200 });
          return stream.end('second try');
        }
        refusedOnce = true;
      }
      stream.close(code);
    });
    limited = await startH2((stream) => {
      limitedOpen++;
      limitedPeak = Math.max(limitedPeak, limitedOpen);
      stream.on('close', () => limitedOpen--);
      setTimeout(() => {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      }, 150);
    }, { maxConcurrentStreams: 2 });
    idle = await startH2((stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    idle.server.on('session', (s) => s.on('close', () => idleClosed.push(performance.now())));
    proxied = await startH2((stream) => {
      stream.respond({ ':status': 200 });
      stream.end('alive');
    });
    passthrough = await startPassThrough(proxied.address);
    midReset = await startMidBodyReset();
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { match: { prefix: /goaway }, cluster: goaway }
      - { match: { prefix: /rst/retried }, cluster: resets, retry: { retry_on: [refused-stream], max_retries: 1, backoff: { base_interval: 1ms, max_interval: 2ms } } }
      - { match: { prefix: /rst }, cluster: resets, retry: { max_retries: 0 } }
      - { match: { prefix: /limited }, cluster: limited }
      - { match: { prefix: /idle }, cluster: idle }
      - { match: { prefix: /lifetime }, cluster: lifetime }
      - { match: { prefix: /ka }, cluster: ka }
      - { match: { prefix: /mid-reset }, cluster: mid_reset }
clusters:
  - { name: goaway, protocol: h2c, endpoints: ["${goaway.address}"] }
  - { name: resets, protocol: h2c, endpoints: ["${resets.address}"] }
  - { name: limited, protocol: h2c, endpoints: ["${limited.address}"], pool: { max_connections: 2 } }
  - { name: idle, protocol: h2c, endpoints: ["${idle.address}"], pool: { keep_alive_timeout: 400ms }, h2: { keepalive_interval: 100ms } }
  - { name: lifetime, protocol: h2c, endpoints: ["${proxied.address}"], pool: { max_requests_per_connection: 3 } }
  - { name: mid_reset, protocol: h2c, endpoints: ["127.0.0.1:${(midReset.address() as AddressInfo).port}"] }
  - { name: ka, protocol: h2c, endpoints: ["${passthrough.address}"], h2: { keepalive_interval: 300ms, keepalive_timeout: 300ms } }
`);
  });

  after(async () => {
    await sidecar?.stop();
    passthrough?.close();
    midReset?.close();
    await Promise.all([goaway?.close(), resets?.close(), limited?.close(), idle?.close(), proxied?.close()]);
  });

  it('GOAWAY with several streams in flight: those past its last stream id go to a new session, none fails', { timeout: 30_000 }, async () => {
    const port = sidecar.ports.in!;
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        i % 2 === 0
          ? httpRequest(port, { path: `/goaway/${i}`, headers: { host: 'app.local' } })
          : httpRequest(port, { method: 'POST', path: `/goaway/${i}`, headers: { host: 'app.local', 'content-type': 'text/plain' }, body: `body-${i}` }),
      ),
    );
    results.forEach((r, i) => {
      assert.equal(r.status, 200, `request ${i}: ${r.status} ${r.headers['x-sidecar-error'] ?? ''} ${r.body}`);
      assert.equal(r.body, `/goaway/${i} ${i % 2 === 0 ? '' : `body-${i}`}`);
    });
    assert.equal(goaway.connections, 2, 'the refused streams went to one new session');
    const metrics = await metricsText(sidecar.adminPort);
    assert.match(metrics, /sidecar_h2_goaways_total\{side="upstream",direction="received",code="NO_ERROR"\} [1-9]/);
  });

  it('RST_STREAM codes map to flags: REFUSED_STREAM not sent (retryable), others UR with the code name', { timeout: 30_000 }, async () => {
    const port = sidecar.ports.in!;
    const refused = await httpRequest(port, { path: '/rst/refused', headers: { host: 'app.local' } });
    assert.equal(refused.status, 503, refused.body);
    assert.equal(refused.headers['x-sidecar-flag'], 'UC');
    assert.match(String(refused.headers['x-sidecar-error']), /refused the stream/);
    const log = await accessLogFor(sidecar, '/rst/refused');
    assert.equal(log.upstream_outcome, 'not-sent');
    assert.equal(log.upstream_cause, 'refused-stream');
    for (const [path, name] of [['/rst/internal', 'INTERNAL_ERROR'], ['/rst/calm', 'ENHANCE_YOUR_CALM'], ['/rst/cancel', 'CANCEL']] as const) {
      const r = await httpRequest(port, { path, headers: { host: 'app.local' } });
      assert.equal(r.status, 502, `${path}: ${r.body}`);
      assert.equal(r.headers['x-sidecar-flag'], 'UR', path);
      assert.match(String(r.headers['x-sidecar-error']), new RegExp(`reset the stream: ${name}`), path);
      const l = await accessLogFor(sidecar, path);
      assert.equal(l.upstream_cause, 'stream-reset', path);
    }
    // A POST refused once is replayed by the retry policy (nothing was sent).
    const retried = await httpRequest(port, { method: 'POST', path: '/rst/retried/refused-once', headers: { host: 'app.local' }, body: 'x' });
    assert.equal(retried.status, 200, retried.body);
    assert.equal(retried.body, 'second try');
    const metrics = await metricsText(sidecar.adminPort);
    assert.match(metrics, /sidecar_h2_resets_total\{side="upstream",direction="received",code="ENHANCE_YOUR_CALM"\} 1/);
    assert.match(metrics, /sidecar_h2_resets_total\{side="upstream",direction="received",code="REFUSED_STREAM"\} [1-9]/);
  });

  it('RST_STREAM after the response head cuts the downstream response (never completed) and logs UR with the code name', { timeout: 30_000 }, async () => {
    const port = sidecar.ports.in!;
    await assert.rejects(httpRequest(port, { path: '/mid-reset', headers: { host: 'app.local' } }), /aborted|socket hang up|ECONNRESET/);
    const log = await accessLogFor(sidecar, '/mid-reset');
    assert.equal(log.response_flag, 'UR');
    assert.match(String(log.error), /ENHANCE_YOUR_CALM/);
  });

  it("honours the upstream's 2 concurrent streams and pool.max_connections 2: 8 requests, 2 sessions, all served", { timeout: 30_000 }, async () => {
    const port = sidecar.ports.in!;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => httpRequest(port, { path: `/limited/${i}`, headers: { host: 'app.local' } })));
    for (const r of results) assert.equal(r.status, 200, r.body);
    assert.equal(limited.connections, 2);
    assert.ok(limitedPeak <= 4, `streams open at once at the upstream: ${limitedPeak}`);
    const metrics = await metricsText(sidecar.adminPort);
    assert.match(metrics, new RegExp(`sidecar_upstream_h2_sessions\\{cluster="limited",endpoint="${limited.address}"\\} 2`));
  });

  it('an idle session is closed after pool.keep_alive_timeout, PINGs notwithstanding', { timeout: 30_000 }, async () => {
    const port = sidecar.ports.in!;
    const r = await httpRequest(port, { path: '/idle', headers: { host: 'app.local' } });
    assert.equal(r.status, 200);
    const t0 = performance.now();
    await waitUntil(() => idleClosed.length > 0, 5000, 'the idle session to close');
    const ms = idleClosed[0]! - t0;
    assert.ok(ms >= 300 && ms < 2500, `closed after ${ms.toFixed(0)} ms (keep_alive_timeout 400ms)`);
    const again = await httpRequest(port, { path: '/idle', headers: { host: 'app.local' } });
    assert.equal(again.status, 200);
    assert.equal(idle.connections, 2);
  });

  it('pool.max_requests_per_connection bounds the streams of one session', { timeout: 30_000 }, async () => {
    const port = sidecar.ports.in!;
    const before = proxied.connections;
    for (let i = 0; i < 6; i++) {
      const r = await httpRequest(port, { path: `/lifetime/${i}`, headers: { host: 'app.local' } });
      assert.equal(r.status, 200, r.body);
    }
    assert.equal(proxied.connections - before, 2);
  });

  it('a black-holed session is found dead by PING within interval + timeout; the next request gets a new one', { timeout: 30_000 }, async () => {
    const port = sidecar.ports.in!;
    const first = await httpRequest(port, { path: '/ka/1', headers: { host: 'app.local' } });
    assert.equal(first.status, 200, first.body);
    assert.equal(passthrough.connections, 1);
    const t0 = performance.now();
    passthrough.blackhole();
    await waitUntil(() => passthrough.closedBySidecar > 0, 5000, 'the sidecar to close the dead session');
    const ms = performance.now() - t0;
    assert.ok(ms < 300 + 300 + 700, `dead session closed after ${ms.toFixed(0)} ms (interval 300 + timeout 300)`);
    const next = await httpRequest(port, { path: '/ka/2', headers: { host: 'app.local' }, timeoutMs: 3000 });
    assert.equal(next.status, 200, next.body);
    assert.equal(next.body, 'alive');
    assert.equal(passthrough.connections, 2);
  });
});

interface PassThroughProxy {
  readonly address: string;
  connections: number;
  /** Connections the sidecar side closed after blackhole(). */
  closedBySidecar: number;
  /** Established connections stop forwarding either way (bytes are read and dropped); new ones forward normally. */
  blackhole(): void;
  close(): void;
}

/** A TCP pass-through to `target` that can make its established connections a black hole. */
async function startPassThrough(target: string): Promise<PassThroughProxy> {
  const [host, portText] = [target.slice(0, target.lastIndexOf(':')), target.slice(target.lastIndexOf(':') + 1)];
  const live = new Set<{ holed: boolean; a: net.Socket; b: net.Socket }>();
  const out: PassThroughProxy = {
    address: '',
    connections: 0,
    closedBySidecar: 0,
    blackhole: () => {
      for (const c of live) c.holed = true;
    },
    close: () => {
      for (const c of live) {
        c.a.destroy();
        c.b.destroy();
      }
      server.close();
    },
  };
  const server = net.createServer((a) => {
    out.connections++;
    const b = net.connect(Number(portText), host);
    const c = { holed: false, a, b };
    live.add(c);
    a.on('data', (d: Buffer) => {
      if (!c.holed) b.write(d);
    });
    b.on('data', (d: Buffer) => {
      if (!c.holed) a.write(d);
    });
    const closed = (): void => {
      if (c.holed && live.has(c)) out.closedBySidecar++;
      live.delete(c);
      b.destroy();
    };
    a.on('end', closed);
    a.on('close', closed);
    a.on('error', () => {});
    b.on('error', () => a.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (out as { address: string }).address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return out;
}

/** A raw HTTP/2 server that answers a stream with a head and 7 bytes, then RST_STREAM ENHANCE_YOUR_CALM. */
async function startMidBodyReset(): Promise<net.Server> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.write(frame(FrameType.SETTINGS, 0, 0));
    let buf = Buffer.alloc(0);
    let answered = false;
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      let off = buf.subarray(0, PREFACE.length).equals(PREFACE) ? PREFACE.length : 0;
      while (!answered && buf.length >= off + 9) {
        const len = buf.readUIntBE(off, 3);
        const id = buf.readUInt32BE(off + 5) & 0x7fffffff;
        if (buf[off + 3] === FrameType.HEADERS) {
          answered = true;
          socket.write(frame(FrameType.HEADERS, 0x4, id, hpackLiterals([[':status', '200']])));
          socket.write(frame(FrameType.DATA, 0, id, Buffer.from('partial')));
          setTimeout(() => socket.write(rstStreamFrame(id, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM)), 100);
        }
        off += 9 + len;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
