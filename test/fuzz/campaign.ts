// The request-path fuzz campaign: seeded fast-check cases of hostile and valid requests over raw sockets (HTTP/1.1)
// and raw frames (HTTP/2) against a real sidecar, with an upstream that checks every request it receives.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { DEFAULT_PATH_NORMALIZATION, normalizePath } from '../../src/router/normalize-path.js';
import { frame, headersFrame, PREFACE, settingsFrame } from '../helpers/h2-frames.js';
import { metricsText } from '../helpers/admin.js';
import { connectInspector, heapCountsByName, inspectorUrl } from '../helpers/inspector.js';
import { rssMiB, startSidecar, type RunningSidecar } from '../helpers/sidecar.js';

type Case =
  | { kind: 'valid'; id: number; method: 'GET' | 'POST'; path: string; body: string; chunked: boolean }
  | { kind: 'raw'; label: string; bytes: Buffer; abandon: boolean }
  | { kind: 'h2raw'; label: string; frames: Buffer[] }
  | { kind: 'h2valid'; id: number; path: string }
  /** A body sent a byte at a time with pauses: all of it (must be answered 200), or part of it and then nothing (must get 408). */
  | { kind: 'drip'; id: number; length: number; sent: number; pauseMs: number }
  /** An HTTP/2 stream left half-open: HEADERS (and maybe some DATA) without END_STREAM, the session kept open; must get 408. */
  | { kind: 'h2stall'; id: number; sent: number };

export interface FuzzReport {
  cases: number;
  /** Cases by kind: valid (HTTP/1.1), h2valid, raw (hostile HTTP/1.1; raw-abandoned: cut off part-way, raw-garbage: random bytes), h2raw, drip, h2stall. */
  kinds: Record<string, number>;
  valid: number;
  hostile: number;
  h1: number;
  h2: number;
  upstreamSeen: number;
  /** Slow bodies sent whole (answered like any request) and cut off mid-way (timed out with 408 by request_body_timeout). */
  dripComplete: number;
  dripStalled: number;
  h2Stalled: number;
  /** Downstream connections still open once idle_timeout has passed after the run (the gauge; must be 0). */
  connectionsAfter: number;
  malformedForwarded: string[];
  wrongAnswers: string[];
  hangs: string[];
  rssBaselineMiB: number;
  rssPeakMiB: number;
  rssAfterMiB: number;
  /** The sidecar's heapUsed after a full GC (through the inspector): after the warm-up, and after the run has settled. */
  heapBaselineMiB: number;
  heapAfterMiB: number;
  crashed: boolean;
  ms: number;
}

/** Short, so connections the cases leave open are timed out (and must be freed) before the memory is measured. */
const IDLE_TIMEOUT_MS = 2000;

/**
 * Memory back to its baseline: the live heap after a full GC, within 4 MiB or a quarter of the baseline. RSS is
 * reported but not judged: V8 and the allocator keep pages a peak needed, so RSS stays up though nothing leaks.
 */
export const memoryBackToBaseline = (r: Pick<FuzzReport, 'heapBaselineMiB' | 'heapAfterMiB'>): boolean =>
  r.heapBaselineMiB > 0 && r.heapAfterMiB <= r.heapBaselineMiB + Math.max(4, r.heapBaselineMiB / 4);

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const safeSeg = fc.stringMatching(/^[a-z0-9_~-]{1,8}$/);
const validPath = fc.array(safeSeg, { minLength: 1, maxLength: 4 }).map((s) => '/' + s.join('/'));
const trick = fc.constantFrom(
  '/public/..%2Fadmin', '//admin', '/admin%2f', '/ADMIN', '/admin;x', '/%2e%2e/admin', '/a\\..\\admin', '/a/%00', '/a%zz',
  '/a#b', '/..;/admin', '/%252e%252e/', '*', 'http://x/a/../b', 'https://x/', '/a b', '/\u00ff\u00fe', '', '/a?b=%2F..',
);
const oddMethod = fc.oneof(fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PRI', 'get', 'G ET', 'GET\t', ''), fc.stringMatching(/^[A-Za-z!#$%&'*+.^_`|~-]{1,12}$/));
const headerJunk = fc.oneof(
  fc.constantFrom(
    'Content-Length: 5\r\nTransfer-Encoding: chunked',
    'Transfer-Encoding: chunked\r\nContent-Length: 3',
    'Content-Length: 5\r\nContent-Length: 6',
    'Content-Length: -1',
    'Content-Length: 1e3',
    'Transfer-Encoding: xchunked',
    'Transfer-Encoding : chunked',
    'Transfer-Encoding: chunked, identity',
    ' X-Folded: a',
    'X-Bad\u0000: 1',
    'X-Utf8: \u00c3\u0028\u00ff',
    'Host: a\r\nHost: b',
    'Host:',
    'Expect: 100-continue',
    'Connection: Upgrade\r\nUpgrade: h2c',
    'Connection: x-fuzz-id',
  ),
  fc.integer({ min: 1, max: 400 }).map((n) => Array.from({ length: n }, (_, i) => `X-Many-${i}: ${i}`).join('\r\n')),
  fc.integer({ min: 1, max: 200 }).map((k) => `X-Huge: ${'a'.repeat(k * 1024)}`),
);
const tail = fc.constantFrom('', '0\r\n\r\n', 'zz\r\nabc\r\n0\r\n\r\n', 'hello', '5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n', '\r\n\r\n\r\n');

const rawCase: fc.Arbitrary<Case> = fc
  .record({
    method: oddMethod,
    target: fc.oneof(trick, validPath, fc.string({ maxLength: 30 })),
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 ', 'HTTP/9.9', ''),
    junk: fc.array(headerJunk, { maxLength: 3 }),
    tail,
    abandon: fc.boolean(),
    // fc.option's freq is how often it gives null (1 in freq): spelled out, so random bytes stay 1 case in 5.
    garbage: fc.oneof({ arbitrary: fc.constant(null), weight: 4 }, { arbitrary: fc.uint8Array({ maxLength: 300 }), weight: 1 }),
  })
  .map((r) => {
    if (r.garbage) return { kind: 'raw' as const, label: 'garbage', bytes: Buffer.from(r.garbage), abandon: r.abandon };
    const head = `${r.method} ${r.target} ${r.version}\r\nHost: t\r\n${r.junk.map((j) => j + '\r\n').join('')}\r\n`;
    return { kind: 'raw' as const, label: `${r.method} ${r.target.slice(0, 40)} ${r.junk.map((j) => j.slice(0, 30)).join('|')}`, bytes: Buffer.from(head + r.tail, 'latin1'), abandon: r.abandon };
  });

const h2Case: fc.Arbitrary<Case> = fc
  .record({
    path: fc.oneof(trick, validPath),
    method: oddMethod,
    extra: fc.array(fc.constantFrom<[string, string]>(['connection', 'close'], ['te', 'gzip'], ['Upper', 'x'], [':bogus', '1'], ['content-length', 'abc'], ['transfer-encoding', 'chunked'], ['x-u', '\u00ff\u00fe']), { maxLength: 2 }),
    drop: fc.constantFrom(-1, 0, 1, 2, 3),
    endStream: fc.boolean(),
    junkFrame: fc.oneof({ arbitrary: fc.constant(null), weight: 2 }, { arbitrary: fc.record({ type: fc.integer({ min: 0, max: 12 }), flags: fc.integer({ min: 0, max: 255 }), stream: fc.integer({ min: 0, max: 9 }), payload: fc.uint8Array({ maxLength: 40 }) }), weight: 1 }),
  })
  .map((r) => {
    let fields: Array<[string, string]> = [[':method', r.method], [':scheme', 'http'], [':path', r.path], [':authority', 't'], ...r.extra];
    if (r.drop >= 0) fields = fields.filter((_, i) => i !== r.drop);
    const frames = [PREFACE, settingsFrame(), headersFrame(1, fields, r.endStream)];
    if (r.junkFrame) frames.push(frame(r.junkFrame.type, r.junkFrame.flags, r.junkFrame.stream, Buffer.from(r.junkFrame.payload)));
    return { kind: 'h2raw' as const, label: `h2 ${r.method} ${r.path.slice(0, 30)}`, frames };
  });

const validCase = (id: number): fc.Arbitrary<Case> =>
  fc.oneof(
    fc.record({ method: fc.constantFrom('GET' as const, 'POST' as const), path: validPath, body: fc.stringMatching(/^[a-z]{0,64}$/), chunked: fc.boolean() }).map((v) => ({ kind: 'valid' as const, id, ...v })),
    validPath.map((path) => ({ kind: 'h2valid' as const, id, path })),
  );

const slowCase = (id: number): fc.Arbitrary<Case> =>
  fc.oneof(
    fc
      .record({ length: fc.integer({ min: 2, max: 6 }), cut: fc.boolean(), pauseMs: fc.integer({ min: 20, max: 120 }) })
      .chain((r) => (r.cut ? fc.integer({ min: 0, max: r.length - 1 }) : fc.constant(r.length)).map((sent) => ({ kind: 'drip' as const, id, length: r.length, sent, pauseMs: r.pauseMs }))),
    fc.integer({ min: 0, max: 3 }).map((sent) => ({ kind: 'h2stall' as const, id, sent })),
  );

/** The campaign listener's request_body_timeout; a stalled body must be answered by then (plus slack), or it is a hang. */
const BODY_TIMEOUT_MS = 2000;

/** Every request the upstream receives must be well-formed. */
function checkForwarded(req: http.IncomingMessage, body: number): string | undefined {
  if (!TOKEN.test(req.method ?? '')) return `method ${JSON.stringify(req.method)}`;
  const url = req.url ?? '';
  const path = url.split('?')[0]!;
  if (!path.startsWith('/')) return `target ${JSON.stringify(url)}`;
  if (normalizePath(path, DEFAULT_PATH_NORMALIZATION) !== path) return `not normalized ${JSON.stringify(url)}`;
  if (req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] !== undefined) return 'both TE and CL';
  const cl = req.headers['content-length'];
  if (cl !== undefined && Number(cl) !== body) return `content-length ${cl} but ${body} bytes`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (!TOKEN.test(req.rawHeaders[i]!)) return `header name ${JSON.stringify(req.rawHeaders[i])}`;
    if (/[\0\r\n]/.test(req.rawHeaders[i + 1]!)) return `header value of ${req.rawHeaders[i]}`;
  }
  if (url.startsWith('/smuggled')) return 'a smuggled request';
  return undefined;
}

function sendRaw(port: number, c: Extract<Case, { kind: 'raw' }> | Extract<Case, { kind: 'h2raw' }>, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = false;
    const timer = setTimeout(() => {
      s.destroy();
      resolve(got);
    }, timeoutMs);
    const finish = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    };
    s.on('error', finish);
    s.on('close', finish);
    s.on('data', () => {
      got = true;
      // Any answer is an answer; abandoned bodies are cut by the client here.
      if (c.kind === 'raw' && c.abandon) finish();
      else setTimeout(finish, 5);
    });
    s.on('connect', () => {
      if (c.kind === 'raw') {
        if (c.abandon) s.write(c.bytes.subarray(0, Math.max(1, c.bytes.length >> 1)), () => setTimeout(finish, 2));
        else s.end(c.bytes); // half-closed: an incomplete head must still be answered or closed, not held
      } else {
        for (const f of c.frames) s.write(f);
        s.end();
      }
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A slow body over a raw socket; resolves with the response's status line and body ('' when the connection closed unanswered). */
function sendDrip(port: number, c: Extract<Case, { kind: 'drip' }>, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    let done = false;
    const finish = (v: string | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    s.setEncoding('latin1');
    s.on('data', (d: string) => (got += d));
    s.on('error', () => finish(got));
    s.on('close', () => finish(got));
    s.on('connect', async () => {
      s.write(`POST /drip/${c.id} HTTP/1.1\r\nHost: t\r\nx-fuzz-id: ${c.id}\r\nContent-Length: ${c.length}\r\nConnection: close\r\n\r\n`);
      for (let i = 0; i < c.sent && !done; i++) {
        await sleep(c.pauseMs);
        if (!done) s.write('d');
      }
      // Cut off: the socket stays open and silent; the sidecar must time the body out and close.
    });
  });
}

/** The status line and body of a raw HTTP/1.1 answer (Connection: close, so the body is the rest). */
function statusAndBody(raw: string): string {
  const status = /^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 'none';
  const at = raw.indexOf('\r\n\r\n');
  let body = at < 0 ? '' : raw.slice(at + 4);
  if (/\r\ntransfer-encoding: chunked\r\n/i.test(raw.slice(0, at))) body = body.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '');
  return `${status} ${body}`;
}

/** An HTTP/2 stream left half-open on its own session; resolves with the :status it got (undefined: none in time). */
function sendH2Stall(port: number, c: Extract<Case, { kind: 'h2stall' }>, timeoutMs: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    let done = false;
    const finish = (v: number | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    session.on('error', () => finish(undefined));
    const st = session.request({ ':method': 'POST', ':path': `/stall/${c.id}`, 'x-fuzz-id': String(c.id) }, { endStream: false });
    st.on('response', (h) => finish(Number(h[':status'])));
    st.on('error', () => finish(undefined));
    st.on('close', () => finish(undefined));
    if (c.sent > 0) st.write('s'.repeat(c.sent));
  });
}

function sendValid(port: number, c: Extract<Case, { kind: 'valid' }>): Promise<string> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { 'x-fuzz-id': String(c.id) };
    if (c.method === 'POST' && !c.chunked) headers['content-length'] = Buffer.byteLength(c.body);
    const req = http.request({ host: '127.0.0.1', port, method: c.method, path: c.path, headers, agent: false, timeout: 5000 }, (res) => {
      let b = '';
      res.setEncoding('utf8').on('data', (d: string) => (b += d));
      res.on('end', () => resolve(`${res.statusCode} ${b}`));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (c.method === 'POST') req.end(c.body);
    else req.end();
  });
}

function sendH2Valid(session: http2.ClientHttp2Session, c: Extract<Case, { kind: 'h2valid' }>): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = session.request({ ':path': c.path, 'x-fuzz-id': String(c.id) });
    let status = 0;
    let b = '';
    s.setTimeout(5000, () => s.close(http2.constants.NGHTTP2_CANCEL));
    s.on('response', (h) => (status = Number(h[':status'])));
    s.setEncoding('utf8').on('data', (d: string) => (b += d));
    s.on('end', () => resolve(`${status} ${b}`));
    s.on('error', reject);
  });
}

export async function runCampaign(opts: { seed: number; cases: number; concurrency?: number; log?: (s: string) => void; diagnose?: boolean }): Promise<FuzzReport> {
  const t0 = Date.now();
  const report: FuzzReport = { cases: 0, kinds: {}, valid: 0, hostile: 0, h1: 0, h2: 0, upstreamSeen: 0, dripComplete: 0, dripStalled: 0, h2Stalled: 0, connectionsAfter: -1, malformedForwarded: [], wrongAnswers: [], hangs: [], rssBaselineMiB: 0, rssPeakMiB: 0, rssAfterMiB: 0, heapBaselineMiB: 0, heapAfterMiB: 0, crashed: false, ms: 0 };
  const upstream = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => (n += d.length));
    req.on('end', () => {
      report.upstreamSeen++;
      const bad = checkForwarded(req, n);
      if (bad !== undefined && report.malformedForwarded.length < 50) report.malformedForwarded.push(bad);
      res.end(`ok ${req.headers['x-fuzz-id'] ?? '-'} ${req.method} ${req.url} ${n}`);
    });
    req.on('error', () => {});
  });
  upstream.on('clientError', (_e, s) => s.destroy());
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const up = (upstream.address() as AddressInfo).port;
  const sidecar: RunningSidecar = await startSidecar(`
access_log: { enabled: false }
listeners:
  - name: in
    port: 0
    limits: { request_body_timeout: ${BODY_TIMEOUT_MS}ms, idle_timeout: ${IDLE_TIMEOUT_MS}ms }
    routes:
      - { match: { prefix: /admin }, direct_response: { status: 403, body: "no" } }
      - { match: { prefix: / }, cluster: app, timeout: 5s }
clusters:
  - { name: app, endpoints: ["127.0.0.1:${up}"] }
`, { nodeArgs: ['--inspect=127.0.0.1:0'] });
  const port = sidecar.ports.in!;
  const url = inspectorUrl(sidecar.stderr());
  assert.ok(url, `no inspector URL in:\n${sidecar.stderr()}`);
  const probe = await connectInspector(url);
  // The valid HTTP/2 requests share a session; one that idle_timeout closed (slow cases can hold every worker) is replaced.
  let shared: http2.ClientHttp2Session | undefined;
  const session = (): http2.ClientHttp2Session => {
    if (shared && !shared.closed && !shared.destroyed) return shared;
    shared = http2.connect(`http://127.0.0.1:${port}`);
    shared.on('error', () => {});
    shared.on('goaway', () => shared?.close());
    return shared;
  };
  try {
    const id = fc.integer({ min: 0, max: 1 << 30 });
    // About 1.5% slow bodies: each takes up to request_body_timeout.
    const gen = fc.oneof({ arbitrary: id.chain(validCase), weight: 60 }, { arbitrary: rawCase, weight: 100 }, { arbitrary: h2Case, weight: 40 }, { arbitrary: id.chain(slowCase), weight: 3 });
    const all = fc.sample(gen, { seed: opts.seed, numRuns: Math.min(opts.cases, 2000) });
    const conc = opts.concurrency ?? 16;
    const runOne = async (c: Case): Promise<void> => {
      report.cases++;
      const kind = c.kind === 'raw' ? (c.label === 'garbage' ? 'raw-garbage' : c.abandon ? 'raw-abandoned' : 'raw') : c.kind;
      report.kinds[kind] = (report.kinds[kind] ?? 0) + 1;
      if (c.kind === 'valid' || c.kind === 'h2valid') {
        report.valid++;
        const want = c.kind === 'valid' ? `200 ok ${c.id} ${c.method} ${c.path} ${c.method === 'POST' ? Buffer.byteLength(c.body) : 0}` : `200 ok ${c.id} GET ${c.path} 0`;
        if (c.kind === 'valid') report.h1++;
        else report.h2++;
        try {
          const got = c.kind === 'valid' ? await sendValid(port, c) : await sendH2Valid(session(), c);
          if (got !== want && report.wrongAnswers.length < 50) report.wrongAnswers.push(`${want} / got ${got.slice(0, 120)}`);
        } catch (e) {
          if (report.wrongAnswers.length < 50) report.wrongAnswers.push(`${want} / ${(e as Error).message}`);
        }
        return;
      }
      if (c.kind === 'drip' || c.kind === 'h2stall') {
        report.hostile++;
        const limit = c.kind === 'drip' ? c.length * 120 + BODY_TIMEOUT_MS + 3000 : BODY_TIMEOUT_MS + 3000;
        const t = Date.now();
        if (c.kind === 'drip') {
          report.h1++;
          const raw = await sendDrip(port, c, limit);
          const got = raw === undefined ? undefined : statusAndBody(raw);
          const whole = c.sent === c.length;
          const want = whole ? `200 ok ${c.id} POST /drip/${c.id} ${c.length}` : '408';
          if (whole) report.dripComplete++;
          else report.dripStalled++;
          if (got === undefined) {
            if (report.hangs.length < 50) report.hangs.push(`drip ${c.sent}/${c.length} bytes: no answer in ${limit}ms`);
          } else if (whole ? got !== want : !got.startsWith('408 ')) {
            if (report.wrongAnswers.length < 50) report.wrongAnswers.push(`drip ${c.sent}/${c.length}: ${want} / got ${got.slice(0, 120)} after ${Date.now() - t}ms`);
          }
        } else {
          report.h2++;
          report.h2Stalled++;
          const status = await sendH2Stall(port, c, limit);
          if (status === undefined) {
            if (report.hangs.length < 50) report.hangs.push(`h2 half-open stream (${c.sent} bytes): no answer in ${limit}ms`);
          } else if (status !== 408 && report.wrongAnswers.length < 50) report.wrongAnswers.push(`h2 half-open stream: 408 / got ${status}`);
        }
        return;
      }
      report.hostile++;
      if (c.kind === 'raw') report.h1++;
      else report.h2++;
      const answered = await sendRaw(port, c, 6000);
      if (!answered && report.hangs.length < 50) report.hangs.push(c.label);
    };
    // Warm up (no slow cases: they would take seconds one after another), then the baseline.
    for (let i = 0; i < 200; i++) {
      const c = all[i % all.length]!;
      if (c.kind !== 'drip' && c.kind !== 'h2stall') await runOne(c);
    }
    opts.log?.('warm-up done');
    report.rssBaselineMiB = await rssMiB(sidecar.proc.pid!);
    report.heapBaselineMiB = await probe.heapUsedAfterGcMiB();
    const before = opts.diagnose ? await heapCountsByName(url) : undefined;
    let next = 0;
    let done = 0;
    const worker = async (): Promise<void> => {
      while (next < opts.cases) {
        const i = next++;
        await runOne(all[i % all.length]!); // cycles the sample past 2000, with fresh ids
        done++;
        if (done % 5000 === 0) {
          report.rssPeakMiB = Math.max(report.rssPeakMiB, await rssMiB(sidecar.proc.pid!));
          opts.log?.(`${done}/${opts.cases} cases`);
        }
      }
    };
    await Promise.all(Array.from({ length: conc }, worker));
    opts.log?.('cases done');
    // Whatever the run left open must be timed out by idle_timeout and the listener's 2 s PING wait: poll the gauge.
    shared?.close();
    const connections = async (): Promise<number> => Number(/^sidecar_downstream_connections_active\{listener="in"\} (\d+)$/m.exec(await metricsText(sidecar.adminPort))?.[1] ?? NaN);
    const settleBy = Date.now() + IDLE_TIMEOUT_MS + 2000 + 3000;
    while ((report.connectionsAfter = await connections()) !== 0 && Date.now() < settleBy) await sleep(100);
    await sleep(200); // the last sockets' close handlers
    report.rssAfterMiB = await rssMiB(sidecar.proc.pid!);
    report.heapAfterMiB = await probe.heapUsedAfterGcMiB();
    if (before) {
      const after = await heapCountsByName(url);
      const grew = [...after].map(([k, v]) => ({ k, dn: v.count - (before.get(k)?.count ?? 0), db: v.bytes - (before.get(k)?.bytes ?? 0) })).sort((a, b) => b.db - a.db).slice(0, 25);
      for (const g of grew) opts.log?.(`heap growth ${g.k}: +${g.dn} objects, +${g.db} bytes`);
    }
    report.rssPeakMiB = Math.max(report.rssPeakMiB, report.rssAfterMiB);
    report.crashed = sidecar.proc.exitCode !== null || sidecar.proc.signalCode !== null;
    const alive = await sendValid(port, { kind: 'valid', id: 1, method: 'GET', path: '/alive', body: '', chunked: false });
    assert.equal(alive, '200 ok 1 GET /alive 0');
  } finally {
    shared?.destroy();
    probe.close();
    await sidecar.stop();
    await new Promise<void>((r) => upstream.close(() => r()));
    upstream.closeAllConnections();
  }
  report.ms = Date.now() - t0;
  return report;
}
