// The sidecar's own HTTP/1.1 upstream client, seen from a raw-socket upstream that records every byte it receives and
// answers exactly as scripted: request framing on the wire, interim and oversized responses, bodies delimited by the
// close, a stalled body, an answer before the upload ends, and the pool limit.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startRawUpstream } from '../helpers/upstream.js';
import { accessLogFor, httpRequest, rawExchange } from '../helpers/strict-net.js';

interface Seen {
  /** Connection number, from 1. */
  readonly conn: number;
  /** The request head as received, request line first. */
  readonly head: string;
  /** The raw bytes after the head (framing included), as far as the script read them. */
  readonly body: Buffer;
}

/**
 * Reads one request head, then the body by Content-Length or up to the last chunk, and hands both to `answer`.
 * Scripts that must answer before the body ends say so by path.
 */
function scripted(seen: Seen[], answer: (req: Seen, socket: net.Socket) => void, ends?: Map<string, string>): (socket: net.Socket) => void {
  let conns = 0;
  return (socket) => {
    const conn = ++conns;
    let lastPath = '';
    // How the connection ended, by the path of its last request: 'reset' (RST) or 'fin'.
    socket.on('error', (e: NodeJS.ErrnoException) => ends?.set(lastPath, e.code === 'ECONNRESET' ? 'reset' : String(e.code)));
    socket.on('end', () => {
      if (!ends?.has(lastPath)) ends?.set(lastPath, 'fin');
    });
    let buf = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        lastPath = head.split(' ')[1] ?? '';
        const early = head.startsWith('POST /early') || head.startsWith('POST /abandoned');
        let bodyEnd = end + 4;
        if (!early) {
          const len = /\r\ncontent-length: *(\d+)/i.exec(head);
          if (len) bodyEnd += Number(len[1]);
          else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
            const last = buf.indexOf('\r\n0\r\n\r\n', end + 2);
            if (last < 0) return;
            bodyEnd = last + 7;
          }
          if (buf.length < bodyEnd) return;
        }
        const req = { conn, head, body: Buffer.from(buf.subarray(end + 4, bodyEnd)) };
        buf = buf.subarray(bodyEnd);
        seen.push(req);
        answer(req, socket);
        if (early) return;
      }
    });
  };
}

const ok = (body: string, extra = ''): string => `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

function answer(req: Seen, socket: net.Socket): void {
  const path = req.head.split(' ')[1]!;
  switch (path) {
    case '/many-headers': {
      let extra = '';
      for (let i = 0; i < 40; i++) extra += `x-h-${i}: v${i}\r\n`;
      socket.write(ok('many', extra));
      return;
    }
    case '/interim':
      socket.write('HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n');
      setTimeout(() => socket.write(ok('final')), 50);
      return;
    case '/switch':
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n');
      return;
    case '/eof':
      socket.end('HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the close');
      return;
    case '/eof-http10':
      socket.end('HTTP/1.0 200 OK\r\n\r\nhttp/1.0 body');
      return;
    case '/stall':
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc');
      return;
    case '/early':
      // Keeps the connection open: whatever the sidecar sends next on it would be read as the rest of this body.
      socket.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\n\r\ntoo big\n');
      return;
    case '/status-099':
      socket.write('HTTP/1.1 099 Weird\r\ncontent-length: 2\r\n\r\nok');
      return;
    case '/status-600':
      socket.write('HTTP/1.1 600 Beyond\r\ncontent-length: 2\r\n\r\nok');
      return;
    case '/gzip-coded':
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\nconnection: close\r\n\r\n\x1f\x8b');
      return;
    case '/no-content-with-length':
      socket.write('HTTP/1.1 204 No Content\r\ncontent-length: 5\r\nx-kind: empty\r\n\r\n');
      return;
    case '/double-partial':
      // One request, one and a half responses in one packet: the half must not meet the next request.
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirstHTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\nSMUGG');
      return;
    case '/double-complete':
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirstHTTP/1.1 201 Created\r\ncontent-length: 8\r\n\r\nSMUGGLED');
      return;
    case '/poison':
      socket.destroy(); // the upstream dies on this request, every time, without a word
      return;
    case '/abandoned':
      return; // never answers: the client gives up mid-upload
    case '/slow':
      setTimeout(() => socket.write(ok('slow')), 300);
      return;
    default:
      socket.write(ok('ok'));
  }
}

/** Valid responses, then damaged: bytes flipped, cut short, or garbage spliced in (seeded, so every run is the same). */
function damagedResponses(count: number): Buffer[] {
  const valid = [
    'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello',
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-a: 1\r\n\r\n5\r\nhello\r\n0\r\nx-t: 2\r\n\r\n',
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.0 200 OK\r\n\r\nuntil close',
  ].map((r) => Buffer.from(r, 'latin1'));
  const damage = fc.tuple(
    fc.constantFrom(...valid),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
    fc.nat(),
    fc.constantFrom('flip', 'cut', 'splice'),
  );
  return fc.sample(damage, { seed: 20261129, numRuns: count }).map(([base, edits, cut, kind]) => {
    const b = Buffer.from(base);
    if (kind === 'cut') return b.subarray(0, cut % b.length);
    if (kind === 'flip') {
      for (const [at, byte] of edits) b[at % b.length] = byte;
      return b;
    }
    const [at, byte] = edits[0]!;
    const i = at % b.length;
    return Buffer.concat([b.subarray(0, i), Buffer.from([byte, 13, 10, byte]), b.subarray(i)]);
  });
}

describe('HTTP/1.1 upstream client', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let upstream: Awaited<ReturnType<typeof startRawUpstream>>;
  let single: Awaited<ReturnType<typeof startRawUpstream>>;
  let fuzz: Awaited<ReturnType<typeof startRawUpstream>>;
  const damaged = damagedResponses(150);
  const seen: Seen[] = [];
  const seenSingle: Seen[] = [];
  const ends = new Map<string, string>();

  before(async () => {
    upstream = await startRawUpstream(scripted(seen, answer, ends));
    single = await startRawUpstream(scripted(seenSingle, answer));
    fuzz = await startRawUpstream(
      scripted([], (req, socket) => socket.end(damaged[Number(/^GET \/(\d+)/.exec(req.head)?.[1] ?? 0)]!)),
    );
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: /single/ }
        cluster: single
        prefix_rewrite: /
      - match: { prefix: /retried/ }
        cluster: raw
        prefix_rewrite: /
        retry: { retry_on: [reset], max_retries: 2, backoff: { base_interval: 1ms, max_interval: 2ms } }
      - match: { prefix: /fuzz/ }
        cluster: fuzz
        prefix_rewrite: /
      - match: { prefix: / }
        cluster: raw
clusters:
  - name: fuzz
    endpoints: ["${fuzz.address}"]
  - name: raw
    endpoints: ["${upstream.address}"]
    stream_idle_timeout: 400ms
  - name: single
    endpoints: ["${single.address}"]
    pool: { max_connections: 1 }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar?.stop();
    await upstream?.close();
    await single?.close();
    await fuzz?.close();
  });

  const lastFor = (path: string): Seen => {
    const s = [...seen].reverse().find((r) => r.head.startsWith(`${r.head.split(' ')[0]} ${path} `));
    assert.ok(s, `the upstream saw ${path}`);
    return s;
  };

  it('writes one Host, first, and no framing for a GET', async () => {
    const res = await httpRequest(port, { path: '/plain', headers: { host: 'app.example', 'x-a': '1' } });
    assert.equal(res.status, 200);
    const lines = lastFor('/plain').head.split('\r\n');
    assert.equal(lines[0], 'GET /plain HTTP/1.1');
    assert.equal(lines[1], 'host: app.example');
    assert.equal(lines.filter((l) => /^host:/i.test(l)).length, 1);
    assert.ok(!lines.some((l) => /^(content-length|transfer-encoding):/i.test(l)), lines.join('\n'));
  });

  it('sends content-length: 0 for a POST without a body', async () => {
    const { data } = await rawExchange(port, ['POST /empty-post HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n'], 0, 500);
    assert.match(data, /^HTTP\/1\.1 200/);
    assert.match(lastFor('/empty-post').head, /\r\ncontent-length: 0(\r\n|$)/);
  });

  it('forwards a chunked upload as chunks with the last chunk, and a sized one with its length only', async () => {
    const chunked = 'POST /up-chunked HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n';
    assert.match((await rawExchange(port, [chunked], 0, 500)).data, /^HTTP\/1\.1 200/);
    const c = lastFor('/up-chunked');
    assert.match(c.head, /\r\ntransfer-encoding: chunked/);
    assert.doesNotMatch(c.head, /content-length/i);
    const decoded = c.body.toString('latin1').replace(/(^|\r\n)[0-9a-f]+\r\n/g, '').replace(/\r\n$/, '');
    assert.equal(decoded, 'hello world');

    const res = await httpRequest(port, { method: 'PUT', path: '/up-sized', body: 'twelve bytes' });
    assert.equal(res.status, 200);
    const s = lastFor('/up-sized');
    assert.match(s.head, /\r\ncontent-length: 12/);
    assert.doesNotMatch(s.head, /transfer-encoding/i);
    assert.equal(s.body.toString(), 'twelve bytes');
  });

  it('passes obs-text header bytes through unchanged', async () => {
    const { data } = await rawExchange(port, [Buffer.from('GET /latin HTTP/1.1\r\nhost: a\r\nx-name: caf\xe9\r\n\r\n', 'latin1')], 0, 500);
    assert.match(data, /^HTTP\/1\.1 200/);
    assert.match(lastFor('/latin').head, /\r\nx-name: caf\xe9/);
  });

  it('delivers a response with 40 headers whole (the parser hands them over in two parts)', async () => {
    const res = await httpRequest(port, { path: '/many-headers' });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'many');
    for (let i = 0; i < 40; i++) assert.equal(res.headers[`x-h-${i}`], `v${i}`);
  });

  it('drops 103 and 100 interim responses and delivers the final one', async () => {
    const res = await httpRequest(port, { path: '/interim' });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'final');
  });

  it('answers an unrequested 101 with 502 UPE', async () => {
    const res = await httpRequest(port, { path: '/switch' });
    assert.equal(res.status, 502);
    assert.equal(res.headers['x-sidecar-flag'], 'UPE');
    assert.match(String(res.headers['x-sidecar-error']), /101 Switching Protocols/);
  });

  it('reads a body delimited by the close of the connection (HTTP/1.1 connection: close, and HTTP/1.0)', async () => {
    const a = await httpRequest(port, { path: '/eof' });
    assert.equal(a.status, 200);
    assert.equal(a.body, 'until the close');
    const b = await httpRequest(port, { path: '/eof-http10' });
    assert.equal(b.status, 200);
    assert.equal(b.body, 'http/1.0 body');
  });

  it('aborts a response whose body stalls past stream_idle_timeout, flagged UT', async () => {
    const started = Date.now();
    await assert.rejects(httpRequest(port, { path: '/stall' }), /aborted|socket hang up|ECONNRESET/);
    assert.ok(Date.now() - started < 3000, 'the stall was cut off by the idle timeout');
    const line = await accessLogFor(sidecar, '/stall');
    assert.equal(line.response_flag, 'UT');
    assert.match(String(line.error), /stream idle timeout/);
  });

  it('relays an answer the upstream gives before the upload ends, and does not reuse that connection', async () => {
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/early', agent: false, headers: { 'content-length': 1 << 20 } }, (r) => {
        let body = '';
        r.setEncoding('utf8').on('data', (d: string) => (body += d));
        r.on('end', () => resolve({ status: r.statusCode!, body }));
      });
      req.on('error', reject);
      req.write(Buffer.alloc(64 * 1024, 1)); // the rest never comes: the upstream answered already
    });
    assert.equal(res.status, 413);
    assert.equal(res.body, 'too big\n');
    assert.equal((await httpRequest(port, { path: '/after-early' })).status, 200);
    assert.notEqual(lastFor('/after-early').conn, lastFor('/early').conn, 'a fresh connection after the early answer');
  });

  it('answers 150 damaged upstream responses each with a response or an abort, and keeps serving', { timeout: 60_000 }, async () => {
    const outcomes = new Map<string, number>();
    for (let i = 0; i < damaged.length; i++) {
      let outcome: string;
      try {
        const res = await httpRequest(port, { path: `/fuzz/${i}`, timeoutMs: 5000 });
        assert.ok(res.status >= 200 && res.status <= 599, `case ${i}: status ${res.status}`);
        if (res.status >= 500) assert.match(String(res.headers['x-sidecar-flag']), /^(UPE|UC|UR)$/, `case ${i}: ${JSON.stringify(damaged[i]!.toString('latin1'))}`);
        outcome = String(res.status >= 500 ? res.headers['x-sidecar-flag'] : res.status);
      } catch (err) {
        // Only a response whose head was already forwarded may end in an abort, never a hang.
        assert.doesNotMatch(String(err), /client timeout/, `case ${i} hung: ${JSON.stringify(damaged[i]!.toString('latin1'))}`);
        outcome = 'aborted';
      }
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    assert.ok((outcomes.get('UPE') ?? 0) > 10, `protocol errors were seen: ${JSON.stringify([...outcomes])}`);
    assert.equal((await httpRequest(port, { path: '/still-alive' })).status, 200);
  });

  it('answers a status outside 100-599 with 502 UPE at once (099 is no interim response)', async () => {
    for (const path of ['/status-099', '/status-600']) {
      const started = Date.now();
      const res = await httpRequest(port, { path });
      assert.equal(res.status, 502, path);
      assert.equal(res.headers['x-sidecar-flag'], 'UPE');
      assert.match(String(res.headers['x-sidecar-error']), /outside 100-599/);
      assert.ok(Date.now() - started < 2000, `${path} answered in ${Date.now() - started}ms`);
    }
  });

  it('refuses a body in a transfer coding other than chunked (502 UPE), and drops Content-Length from a 204', async () => {
    const coded = await httpRequest(port, { path: '/gzip-coded' });
    assert.equal(coded.status, 502);
    assert.match(String(coded.headers['x-sidecar-error']), /unsupported Transfer-Encoding "gzip"/);
    const empty = await httpRequest(port, { path: '/no-content-with-length' });
    assert.equal(empty.status, 204);
    assert.equal(empty.headers['content-length'], undefined);
    assert.equal(empty.headers['x-kind'], 'empty');
  });

  it('never reuses a connection on which the upstream sent more than one response to one request', async () => {
    for (const path of ['/double-partial', '/double-complete']) {
      const first = await httpRequest(port, { path: `/single${path}` });
      assert.equal(first.status, 200);
      assert.equal(first.body, 'first');
      const next = await httpRequest(port, { path: `/single/innocent${path}` });
      assert.equal(next.status, 200, `${path}: the next request got ${next.status} ${next.body}`);
      assert.equal(next.body, 'ok');
      const conns = seenSingle.filter((r) => r.head.includes(path)).map((r) => r.conn);
      assert.equal(conns.length, 2);
      assert.notEqual(conns[0], conns[1], `${path}: the next request went on a fresh connection`);
    }
  });

  it('resets the upstream connection (RST, not FIN) when the client abandons an upload, so a cut-short body is never mistaken for a whole one', async () => {
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => {});
    client.write('POST /abandoned HTTP/1.1\r\nhost: a\r\ncontent-length: 1048576\r\n\r\n');
    client.write(Buffer.alloc(64 * 1024, 7));
    for (let i = 0; i < 100 && !seen.some((r) => r.head.startsWith('POST /abandoned')); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(seen.some((r) => r.head.startsWith('POST /abandoned')), 'the upload reached the upstream');
    client.destroy();
    for (let i = 0; i < 100 && !ends.has('/abandoned'); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(ends.get('/abandoned'), 'reset');
    const line = await accessLogFor(sidecar, '/abandoned');
    assert.equal(line.response_flag, 'DC', 'a client that leaves mid-upload is DC, not a malformed request');
    assert.equal(line.status, 499);
  });

  it('replays after a stale connection at most once per request, however many retries: a poison request is not the keep-alive race', async () => {
    for (let i = 0; i < 6; i++) await httpRequest(port, { path: `/warm-${i}` }); // reused connections in the pool
    const before = seen.filter((r) => r.head.startsWith('GET /poison ')).length;
    const res = await httpRequest(port, { path: '/retried/poison' });
    assert.equal(res.status, 503);
    const hits = seen.filter((r) => r.head.startsWith('GET /poison ')).length - before;
    const line = await accessLogFor(sidecar, '/retried/poison');
    assert.equal(line.attempts, 3);
    assert.ok(hits <= 4, `the upstream saw the poison request ${hits} times for 3 attempts`);
  });

  it('logs bytes_in as the request body\'s bytes, whether they came with the head or later, sized or chunked', async () => {
    await httpRequest(port, { method: 'PUT', path: '/bytes-small', body: 'hello world' });
    await httpRequest(port, { method: 'PUT', path: '/bytes-large', body: 'z'.repeat(200_000) });
    await rawExchange(port, ['POST /bytes-chunked HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'], 0, 300);
    assert.equal((await accessLogFor(sidecar, '/bytes-small')).bytes_in, 11);
    assert.equal((await accessLogFor(sidecar, '/bytes-large')).bytes_in, 200_000);
    assert.equal((await accessLogFor(sidecar, '/bytes-chunked')).bytes_in, 11);
  });

  it('queues requests beyond max_connections and serves them on the one connection, in order', async () => {
    const results = await Promise.all([1, 2, 3, 4].map((i) => httpRequest(port, { path: `/single/slow?i=${i}` })));
    for (const r of results) assert.equal(r.status, 200);
    const slow = seenSingle.filter((s) => s.head.startsWith('GET /slow?'));
    assert.equal(slow.length, 4);
    assert.equal(new Set(slow.map((s) => s.conn)).size, 1, 'one upstream connection');
  });
});
