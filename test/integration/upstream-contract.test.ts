// One contract for every upstream implementation (HTTP/1.1 pool, h2c sessions), run directly against real servers:
// connect refused and timed out, resets before and after the head, slow bodies, trailers, cancellation, pool reuse and
// concurrency, each failure asserted by its typed outcome and cause code rather than its message.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { isWholeBody } from '../../src/core/body.js';
import { Cancellation } from '../../src/core/cancel.js';
import { ProxyError, type AttemptOutcome, type FailureCode } from '../../src/core/errors.js';
import { HeaderList } from '../../src/core/headers.js';
import type { ProxyRequest, ProxyResponse, RequestContext } from '../../src/core/service.js';
import { newContext } from '../../src/http-server/exchange.js';
import { withConnectTimeout, type Connector } from '../../src/upstream/connector.js';
import { Http1Upstream } from '../../src/upstream/http1/pool.js';
import { testUpstreamOptions } from '../../src/upstream/testing.js';
import { Http2Upstream } from '../../src/upstream/http2.js';
import type { Upstream, UpstreamOptions } from '../../src/upstream/upstream.js';
import { startBlackhole, type Blackhole } from '../helpers/strict-net.js';
import { freePort } from '../helpers/upstream.js';
import { frame, FrameType, PREFACE } from '../helpers/h2-frames.js';

/** What the contract's server does, by request path. */
const SLOW_CHUNKS = 4;
const SLOW_GAP_MS = 80;
const HOLD_MS = 10_000;

/** A test server for one protocol: counts TCP connections and reports how each request ended at its side. */
interface ContractServer {
  readonly address: string;
  connections(): number;
  /** Resolves when the request to `path` has gone away at the server (closed, reset or cancelled). */
  closedAtServer(path: string): Promise<void>;
  /** Request trailers seen, by path. */
  readonly requestTrailers: Map<string, Record<string, string | string[] | undefined>>;
  close(): Promise<void>;
}

interface Kind {
  readonly name: 'http1' | 'h2c';
  startServer(): Promise<ContractServer>;
  create(opts: UpstreamOptions, connector?: Connector): Upstream;
  /** Cause codes a reset before the head may carry on this protocol. */
  readonly resetBeforeHead: readonly FailureCode[];
}

function closeWatch(): { watch(path: string): Promise<void>; closed(path: string): void } {
  const waiters = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const entry = (path: string): { promise: Promise<void>; resolve: () => void } => {
    let e = waiters.get(path);
    if (!e) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      waiters.set(path, (e = { promise, resolve }));
    }
    return e;
  };
  return { watch: (path) => entry(path).promise, closed: (path) => entry(path).resolve() };
}

async function startHttp1Server(): Promise<ContractServer> {
  let connections = 0;
  const closes = closeWatch();
  const requestTrailers = new Map<string, Record<string, string | string[] | undefined>>();
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    res.once('close', () => closes.closed(path));
    req.on('data', () => {});
    req.on('end', () => {
      if (Object.keys(req.trailers).length > 0) requestTrailers.set(path, { ...req.trailers });
      if (path.startsWith('/ok')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 });
        res.end('hello');
      } else if (path === '/reset-before-head') {
        req.socket.resetAndDestroy();
      } else if (path === '/reset-after-head') {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1000 });
        res.write('0123456789');
        setTimeout(() => req.socket.resetAndDestroy(), 50);
      } else if (path === '/slow') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let n = 0;
        const tick = (): void => {
          res.write(`chunk${n}|`);
          if (++n < SLOW_CHUNKS) setTimeout(tick, SLOW_GAP_MS);
          else res.end();
        };
        tick();
      } else if (path === '/trailers') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('body');
        res.addTrailers({ 'x-checksum': 'abc123' });
        res.end();
      } else if (path === '/hang') {
        setTimeout(() => res.destroy(), HOLD_MS).unref();
      }
    });
  });
  server.on('connection', () => connections++);
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    closedAtServer: closes.watch,
    requestTrailers,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function startH2Server(settings: http2.Settings = {}): Promise<ContractServer> {
  let connections = 0;
  const closes = closeWatch();
  const requestTrailers = new Map<string, Record<string, string | string[] | undefined>>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createServer({ settings });
  server.on('connection', () => connections++);
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    stream.on('error', () => {});
    stream.once('close', () => closes.closed(path));
    stream.once('trailers', (t: http2.IncomingHttpHeaders) => requestTrailers.set(path, { ...t }));
    stream.on('data', () => {});
    const answer = (): void => {
      if (path.startsWith('/ok')) {
        stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': 5 });
        stream.end('hello');
      } else if (path === '/reset-before-head') {
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      } else if (path === '/reset-after-head') {
        stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': 1000 });
        stream.write('0123456789');
        setTimeout(() => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 50);
      } else if (path === '/slow') {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        let n = 0;
        const tick = (): void => {
          if (stream.destroyed) return;
          stream.write(`chunk${n}|`);
          if (++n < SLOW_CHUNKS) setTimeout(tick, SLOW_GAP_MS);
          else stream.end();
        };
        tick();
      } else if (path === '/trailers') {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc123' }));
        stream.end('body');
      } else if (path === '/hang') {
        setTimeout(() => stream.destroy(), HOLD_MS).unref();
      }
    };
    // Answer once the request is complete, as the HTTP/1.1 server does.
    if (stream.readableEnded) answer();
    else stream.once('end', answer);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    closedAtServer: closes.watch,
    requestTrailers,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const KINDS: readonly Kind[] = [
  { name: 'http1', startServer: startHttp1Server, create: (o, c) => new Http1Upstream(o, c), resetBeforeHead: ['connection-closed'] },
  { name: 'h2c', startServer: () => startH2Server(), create: (o, c) => new Http2Upstream(o, c), resetBeforeHead: ['stream-reset'] },
];

/** The suite's pools: room for 8 connections, idle ones kept 30 s. */
const options = (address: string, over: Partial<UpstreamOptions> = {}): UpstreamOptions =>
  testUpstreamOptions(address, { maxConnections: 8, keepAliveTimeout: 30_000, ...over });

/** A context as a listener makes one, named after this suite. */
function context(): RequestContext {
  const ctx = newContext('contract', '127.0.0.1', 'HTTP/1.1', 'contract');
  ctx.route = 'r';
  ctx.cluster = 'c';
  return ctx;
}

function request(path: string, opts: { method?: string; body?: Readable; trailers?: HeaderList } = {}): ProxyRequest {
  return {
    method: opts.method ?? 'GET',
    authority: 'app.local',
    path,
    scheme: 'http',
    headers: new HeaderList(['user-agent', 'contract']),
    body: opts.body ?? null,
    contentLength: -1,
    trailers: opts.body === undefined ? undefined : { fields: opts.trailers },
    cancel: new Cancellation(),
    context: context(),
  };
}

function send(up: Upstream, req: ProxyRequest): Promise<ProxyResponse> {
  return up.request(req, req.cancel);
}

/** Reads a body to its end; rejects with the error it fails with. */
async function readBody(res: ProxyResponse): Promise<string> {
  const body = res.body;
  if (body === null) return '';
  if (isWholeBody(body)) return body.toString('latin1');
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('latin1');
}

async function rejection(p: Promise<unknown>): Promise<ProxyError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ProxyError, `rejected with ${String(err)}, not a ProxyError`);
    return err;
  }
  assert.fail('expected the attempt to fail');
}

function assertTyped(err: ProxyError, want: { flag?: string; status?: number; outcome: AttemptOutcome; code?: FailureCode | readonly FailureCode[] }): void {
  const seen = `${err.flag} ${err.status} ${err.outcome}/${err.code}: ${err.message}`;
  if (want.flag !== undefined) assert.equal(err.flag, want.flag, seen);
  if (want.status !== undefined) assert.equal(err.status, want.status, seen);
  assert.equal(err.outcome, want.outcome, seen);
  if (want.code !== undefined) {
    const codes = typeof want.code === 'string' ? [want.code] : want.code;
    assert.ok(err.code !== undefined && codes.includes(err.code), seen);
  }
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

for (const kind of KINDS) {
  describe(`upstream contract: ${kind.name}`, () => {
    let server: ContractServer;
    let blackhole: Blackhole;
    const upstreams: Upstream[] = [];
    const make = (opts: UpstreamOptions, connector?: Connector): Upstream => {
      const up = kind.create(opts, connector);
      upstreams.push(up);
      return up;
    };

    before(async () => {
      server = await kind.startServer();
      blackhole = await startBlackhole();
    });
    after(async () => {
      await Promise.all(upstreams.map((u) => u.close()));
      await server.close();
      await blackhole.close();
    });

    it('connect refused: UF 503, not sent, connect-refused, naming the endpoint', { timeout: 10_000 }, async () => {
      const address = `127.0.0.1:${await freePort()}`;
      const err = await rejection(send(make(options(address)), request('/ok')));
      assertTyped(err, { flag: 'UF', status: 503, outcome: 'not-sent', code: 'connect-refused' });
      assert.equal(err.endpoint, address);
    });

    it('connect timeout (a connector whose connects never complete): UF 504, not sent, within connect_timeout', { timeout: 10_000 }, async () => {
      // Every connect goes to a loopback port whose accept queue is full: it hangs, as a dropped SYN would.
      const [host, port] = [blackhole.address.slice(0, blackhole.address.lastIndexOf(':')), blackhole.port];
      const neverConnects: Connector = (target, o) => withConnectTimeout(net.connect({ host, port }), target, o.timeout);
      const t0 = performance.now();
      const err = await rejection(send(make(options(server.address, { connectTimeout: 300 }), neverConnects), request('/ok')));
      const ms = performance.now() - t0;
      assertTyped(err, { flag: 'UF', status: 504, outcome: 'not-sent', code: 'connect-timeout' });
      assert.equal(err.endpoint, server.address);
      assert.ok(ms >= 280 && ms < 2000, `failed after ${ms} ms (connect_timeout 300ms)`);
    });

    it('reset before the response head: possibly accepted (the upstream may have acted on it)', { timeout: 10_000 }, async () => {
      const err = await rejection(send(make(options(server.address)), request('/reset-before-head')));
      assertTyped(err, { outcome: 'possibly-accepted', code: kind.resetBeforeHead });
      assert.ok(['UC', 'UR'].includes(err.flag), err.flag);
    });

    it('reset after the head: the response is handed over, and its body fails instead of ending', { timeout: 10_000 }, async () => {
      const res = await send(make(options(server.address)), request('/reset-after-head'));
      assert.equal(res.status, 200);
      await assert.rejects(readBody(res), (err: Error) => {
        // The HTTP/1.1 client types it; node:http2's own stream error is what the h2c body fails with (the
        // downstream adapter turns it into UR), since typing it would cost a wrapper stream per response.
        if (kind.name === 'http1') assert.ok(err instanceof ProxyError && err.outcome === 'response-started', String(err));
        else assert.equal((err as Error & { code?: string }).code, 'ERR_HTTP2_STREAM_ERROR');
        return true;
      });
    });

    it('slow body: the head is handed over before the body has arrived, and the body streams in whole', { timeout: 10_000 }, async () => {
      const t0 = performance.now();
      const res = await send(make(options(server.address)), request('/slow'));
      const headMs = performance.now() - t0;
      assert.equal(res.status, 200);
      assert.ok(res.body !== null && !isWholeBody(res.body), 'a body still arriving is a stream');
      const body = await readBody(res);
      const totalMs = performance.now() - t0;
      assert.equal(body, Array.from({ length: SLOW_CHUNKS }, (_, i) => `chunk${i}|`).join(''));
      assert.ok(totalMs - headMs >= (SLOW_CHUNKS - 1) * SLOW_GAP_MS * 0.8, `head at ${headMs} ms, body done at ${totalMs} ms`);
    });

    it('trailers: response trailers are there when the body ends, request trailers reach the upstream', { timeout: 10_000 }, async () => {
      const up = make(options(server.address));
      const res = await send(up, request('/trailers'));
      assert.equal(res.status, 200);
      assert.equal(await readBody(res), 'body');
      assert.equal(res.trailers?.get('x-checksum'), 'abc123');

      const { PassThrough } = await import('node:stream');
      const body = new PassThrough();
      const req = request('/ok-trailers', { method: 'POST', body, trailers: new HeaderList(['x-request-sum', 'r42']) });
      body.end('payload');
      const res2 = await send(up, req);
      assert.equal(res2.status, 200);
      await readBody(res2);
      assert.equal(server.requestTrailers.get('/ok-trailers')?.['x-request-sum'], 'r42');
    });

    it('cancellation: a request waiting for its head rejects with the cancel reason and goes away at the upstream', { timeout: 10_000 }, async () => {
      const up = make(options(server.address));
      const req = request('/hang');
      const pending = send(up, req);
      const gone = server.closedAtServer('/hang');
      await settle(100);
      const reason = new ProxyError('DC', 'downstream closed before the response started');
      req.cancel.abort(reason);
      await assert.rejects(pending, (err) => err === reason);
      await gone; // the upstream saw the request go away (connection reset / RST_STREAM CANCEL), not a hang
      // The upstream stays usable.
      const res = await send(up, request('/ok-after-cancel'));
      assert.equal(res.status, 200);
      assert.equal(await readBody(res), 'hello');
    });

    it('pool reuse: sequential requests share one connection', { timeout: 10_000 }, async () => {
      const before = server.connections();
      const up = make(options(server.address));
      for (let i = 0; i < 10; i++) {
        const res = await send(up, request(`/ok-seq-${i}`));
        assert.equal(res.status, 200);
        assert.equal(await readBody(res), 'hello');
      }
      assert.equal(server.connections() - before, 1, 'TCP connections opened for 10 sequential requests');
      assert.equal(up.connections, 1);
    });

    it('64 concurrent requests: h2c multiplexes them on one connection, HTTP/1.1 opens at most max_connections', { timeout: 10_000 }, async () => {
      const before = server.connections();
      const up = make(options(server.address, { maxConnections: 8 }));
      const results = await Promise.all(Array.from({ length: 64 }, (_, i) => send(up, request(`/ok-par-${i}`)).then(readBody)));
      assert.ok(results.every((b) => b === 'hello'));
      assert.equal(server.connections() - before, kind.name === 'h2c' ? 1 : 8);
    });
  });
}

describe('upstream contract: h2c streams the upstream did not process', () => {
  it('REFUSED_STREAM is not sent (refused-stream), read from the reset code', { timeout: 10_000 }, async () => {
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const up = new Http2Upstream(options(`127.0.0.1:${(server.address() as AddressInfo).port}`));
    try {
      assertTyped(await rejection(send(up, request('/refuse'))), { flag: 'UC', outcome: 'not-sent', code: 'refused-stream' });
    } finally {
      await up.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("streams past a GOAWAY's last stream id are replayed on a new session; those below it complete", { timeout: 10_000 }, async () => {
    const server = http2.createServer();
    let sessions = 0;
    server.on('session', () => sessions++);
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      const first = stream.session as http2.ServerHttp2Session & { seen?: number };
      if (sessions > 1) {
        stream.respond({ ':status': 200 });
        return stream.end(`again ${headers[':path']}`);
      }
      // Three streams arrive on the first session; GOAWAY says only the first was (and will be) processed.
      first.seen = (first.seen ?? 0) + 1;
      if (first.seen === 1) setTimeout(() => {
        stream.respond({ ':status': 200 });
        stream.end('first');
      }, 100);
      if (first.seen === 3) first.goaway(http2.constants.NGHTTP2_NO_ERROR, 1);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const up = new Http2Upstream(options(`127.0.0.1:${(server.address() as AddressInfo).port}`));
    try {
      const [a, b, c] = await Promise.all([send(up, request('/g1')), send(up, request('/g2')), send(up, request('/g3'))]);
      assert.equal(await readBody(a), 'first');
      assert.equal(await readBody(b), 'again /g2');
      assert.equal(await readBody(c), 'again /g3');
      assert.equal(sessions, 2);
    } finally {
      await up.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a stream refused by GOAWAY on every session fails typed not-sent (refused-stream) after a few sessions', { timeout: 10_000 }, async () => {
    // A raw server: node:http2's goaway() turns last stream id 0 into the last one it saw.
    let sessions = 0;
    const server = net.createServer((socket) => {
      sessions++;
      socket.on('error', () => {});
      socket.write(frame(FrameType.SETTINGS, 0, 0));
      let seen = 0;
      socket.on('data', (d: Buffer) => {
        seen += d.length;
        // Past the preface and SETTINGS, the HEADERS of the first stream: refuse everything.
        if (seen > PREFACE.length + 9 && !socket.destroyed) {
          const p = Buffer.alloc(8);
          p.writeUInt32BE(0, 0);
          p.writeUInt32BE(0, 4);
          socket.end(frame(FrameType.GOAWAY, 0, 0, p));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const up = new Http2Upstream(options(`127.0.0.1:${(server.address() as AddressInfo).port}`));
    try {
      const err = await rejection(send(up, request('/always')));
      assertTyped(err, { flag: 'UC', outcome: 'not-sent', code: 'refused-stream' });
      assert.match(err.message, /GOAWAY \(NO_ERROR\)/);
      assert.equal(sessions, 3);
    } finally {
      await up.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('upstream contract: h2c stream limits', () => {
  const upstreams: Upstream[] = [];
  after(async () => {
    await Promise.all(upstreams.map((u) => u.close()));
  });

  /** `n` concurrent held requests, answered together; returns the TCP connections they took. */
  async function connectionsFor(n: number, serverSettings: http2.Settings, maxConcurrentStreams: number): Promise<number> {
    const server = http2.createServer({ settings: serverSettings });
    let connections = 0;
    let held: Array<() => void> = [];
    server.on('connection', () => connections++);
    server.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      const answer = (): void => {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      };
      if (headers[':path'] === '/warm') return answer();
      held.push(answer);
      if (held.length === n) {
        for (const a of held) a();
        held = [];
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const up = new Http2Upstream(options(address, { maxConcurrentStreams }));
    upstreams.push(up);
    try {
      // A first request teaches the upstream the server's SETTINGS; its connection stays open for the rest.
      assert.equal(await readBody(await send(up, request('/warm'))), 'ok');
      const bodies = await Promise.all(Array.from({ length: n }, (_, i) => send(up, request(`/held-${i}`)).then(readBody)));
      assert.ok(bodies.every((b) => b === 'ok'));
      return connections;
    } finally {
      await up.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  it("opens another connection once a session carries the peer's SETTINGS_MAX_CONCURRENT_STREAMS", { timeout: 15_000 }, async () => {
    assert.equal(await connectionsFor(25, { maxConcurrentStreams: 10 }, 100), 3);
  });

  it('opens another connection once a session carries pool.max_concurrent_streams', { timeout: 15_000 }, async () => {
    assert.equal(await connectionsFor(10, {}, 4), 3);
  });
});
