// Helpers for the protocol-* integration tests: a keep-alive raw HTTP/1.1 connection that parses responses exactly
// as they arrive on the wire, deterministic pattern streams with digests, an RSS sampler and small waiting utilities.
import { createHash, type Hash } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import { Readable, Writable } from 'node:stream';
import { rssMiB, type RunningSidecar } from './sidecar.js';

export interface WireResponse {
  status: number;
  statusLine: string;
  /** Header lines as sent (without the status line). */
  headerLines: string[];
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  chunked: boolean;
  /** Trailer lines after the 0-size chunk, as sent. */
  trailerLines: string[];
  trailers: Record<string, string>;
  /** Raw bytes of the whole response. */
  raw: Buffer;
}

const CRLF2 = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');

/** One TCP connection to an HTTP/1.1 server, reading responses one at a time (keep-alive aware). */
export class RawConnection {
  readonly socket: net.Socket;
  #buf: Buffer = Buffer.alloc(0);
  #closed = false;
  #wake: (() => void) | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.#buf = this.#buf.length ? Buffer.concat([this.#buf, d]) : d;
      this.#notify();
    });
    const onClose = (): void => {
      this.#closed = true;
      this.#notify();
    };
    socket.on('end', onClose);
    socket.on('close', onClose);
    socket.on('error', onClose);
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, host);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(new RawConnection(s));
      });
      s.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes received and not consumed yet. */
  get pending(): Buffer {
    return this.#buf;
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Waits for more data or close; rejects after the deadline. */
  async #more(deadline: number, what: string): Promise<void> {
    if (this.#closed) throw new Error(`connection closed while waiting for ${what}; have: ${JSON.stringify(this.#buf.toString('latin1').slice(0, 500))}`);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.#wake = undefined;
        reject(new Error(`timed out waiting for ${what}; have: ${JSON.stringify(this.#buf.toString('latin1').slice(0, 500))}`));
      }, Math.max(1, deadline - Date.now()));
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  async #take(n: number, deadline: number, what: string): Promise<Buffer> {
    while (this.#buf.length < n) await this.#more(deadline, what);
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  async #takeUntil(sep: Buffer, deadline: number, what: string): Promise<Buffer> {
    for (;;) {
      const i = this.#buf.indexOf(sep);
      if (i >= 0) {
        const out = this.#buf.subarray(0, i + sep.length);
        this.#buf = this.#buf.subarray(i + sep.length);
        return out;
      }
      await this.#more(deadline, what);
    }
  }

  /** Waits until the received (unconsumed) text contains `s`. */
  async waitFor(s: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#buf.toString('latin1').includes(s)) await this.#more(deadline, JSON.stringify(s));
  }

  /** Resolves true if the peer closes within timeoutMs. */
  async waitClosed(timeoutMs = 3000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      try {
        await this.#more(deadline, 'close');
      } catch {
        return this.#closed;
      }
    }
    return true;
  }

  /** Waits `ms` and returns whatever arrived unconsumed meanwhile (for "nothing more was sent" checks). */
  async idle(ms: number): Promise<Buffer> {
    await new Promise((r) => setTimeout(r, ms));
    return this.#buf;
  }

  /**
   * Reads exactly one response (which may be a 1xx). `method` tells whether a body follows (HEAD never has one).
   * Bodies: none for HEAD/1xx/204/304/2xx-to-CONNECT; chunked (with trailers); Content-Length; else until close.
   */
  async readResponse(opts: { method?: string; timeoutMs?: number } = {}): Promise<WireResponse> {
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    const headBuf = await this.#takeUntil(CRLF2, deadline, 'response head');
    const lines = headBuf.toString('latin1').slice(0, -4).split('\r\n');
    const statusLine = lines[0] ?? '';
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (!m) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(statusLine)}`);
    const status = Number(m[1]);
    const headerLines = lines.slice(1);
    const headers = parseHeaderLines(headerLines);
    const parts: Buffer[] = [headBuf];
    let body: Buffer = Buffer.alloc(0);
    let chunked = false;
    const trailerLines: string[] = [];
    const noBody =
      (status >= 100 && status < 200) || status === 204 || status === 304 || opts.method === 'HEAD' || (opts.method === 'CONNECT' && status >= 200 && status < 300);
    if (!noBody) {
      if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) {
        chunked = true;
        const chunks: Buffer[] = [];
        for (;;) {
          const sizeLine = await this.#takeUntil(CRLF, deadline, 'chunk size');
          parts.push(sizeLine);
          const size = parseInt(sizeLine.toString('latin1').split(';')[0]!.trim(), 16);
          if (!Number.isFinite(size)) throw new Error(`bad chunk size line ${JSON.stringify(sizeLine.toString('latin1'))}`);
          if (size === 0) {
            for (;;) {
              const line = await this.#takeUntil(CRLF, deadline, 'trailer line');
              parts.push(line);
              const text = line.toString('latin1').slice(0, -2);
              if (text === '') break;
              trailerLines.push(text);
            }
            break;
          }
          const data = await this.#take(size + 2, deadline, 'chunk data');
          parts.push(data);
          if (!data.subarray(size).equals(CRLF)) throw new Error('chunk data not followed by CRLF');
          chunks.push(data.subarray(0, size));
        }
        body = Buffer.concat(chunks);
      } else if (headers['content-length'] !== undefined) {
        const n = Number(headers['content-length']);
        body = Buffer.from(await this.#take(n, deadline, `${n} body bytes`));
        parts.push(body);
      } else {
        while (!this.#closed) await this.#more(deadline, 'body until close');
        body = this.#buf;
        this.#buf = Buffer.alloc(0);
        parts.push(body);
      }
    }
    return { status, statusLine, headerLines, headers, body, chunked, trailerLines, trailers: parseHeaderLines(trailerLines), raw: Buffer.concat(parts) };
  }

  /** Reads responses until a final (non-1xx) one; returns the informational ones too. */
  async readFinalResponse(opts: { method?: string; timeoutMs?: number } = {}): Promise<{ informational: WireResponse[]; response: WireResponse }> {
    const informational: WireResponse[] = [];
    for (;;) {
      const r = await this.readResponse(opts);
      if (r.status >= 200 || r.status === 101) return { informational, response: r };
      informational.push(r);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

export function parseHeaderLines(lines: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const k = line.slice(0, i).trim().toLowerCase();
    const v = line.slice(i + 1).trim();
    out[k] = out[k] === undefined ? v : `${out[k]}, ${v}`;
  }
  return out;
}

// ---- deterministic streams ----

const BASE_BLOCK = (() => {
  // A fixed pseudo-random 64 KiB block (xorshift32), the same in every process.
  const b = Buffer.allocUnsafe(64 * 1024);
  let x = 0x9e3779b9;
  for (let i = 0; i < b.length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
})();

export interface PatternSource {
  readonly stream: Readable;
  /** Bytes produced so far. */
  sent(): number;
  /** sha1 of everything produced (call once, after the stream ended). */
  digest(): string;
}

/**
 * A lazily generated stream of `total` bytes: 64 KiB blocks of fixed pseudo-random data, each stamped with its index,
 * so lost, duplicated or reordered blocks change the digest. Never holds more than a few blocks.
 */
export function patternSource(total: number, chunkSize = 64 * 1024): PatternSource {
  const hash = createHash('sha1');
  let sent = 0;
  let index = 0;
  const stream = new Readable({
    highWaterMark: chunkSize,
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(chunkSize, total - sent, BASE_BLOCK.length);
      const buf = Buffer.allocUnsafe(n);
      BASE_BLOCK.copy(buf, 0, 0, n);
      if (n >= 4) buf.writeUInt32BE(index >>> 0, 0);
      index++;
      sent += n;
      hash.update(buf);
      this.push(buf);
    },
  });
  let digest: string | undefined;
  return { stream, sent: () => sent, digest: () => (digest ??= hash.digest('hex')) };
}

/** Counts and hashes whatever is written to it. */
export class CountingSink extends Writable {
  bytes = 0;
  readonly #hash: Hash = createHash('sha1');
  #digest: string | undefined;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytes += chunk.length;
    this.#hash.update(chunk);
    cb();
  }

  digest(): string {
    this.#digest ??= this.#hash.digest('hex');
    return this.#digest;
  }
}

// ---- process memory ----

/** Samples a process's RSS every `intervalMs` until stop(); reports baseline, peak and sample count. */
export function sampleRss(pid: number, intervalMs = 100): { stop(): Promise<{ samples: number[]; peak: number }> } {
  const samples: number[] = [];
  let stopped = false;
  let pending: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    if (stopped) return;
    pending = rssMiB(pid).then(
      (v) => {
        if (Number.isFinite(v)) samples.push(v);
      },
      () => {},
    );
  }, intervalMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await pending;
      samples.push(await rssMiB(pid));
      return { samples, peak: Math.max(...samples) };
    },
  };
}

// ---- waiting ----

export async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits for an access-log line satisfying `pred` (the log is flushed every 100 ms). */
export async function waitForLogLine(
  sidecar: RunningSidecar,
  pred: (line: Record<string, unknown>) => boolean,
  timeoutMs = 5000,
): Promise<Record<string, unknown>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const hit = sidecar.accessLog().find(pred);
    if (hit) return hit;
    if (Date.now() > end) throw new Error(`no matching access-log line within ${timeoutMs}ms:\n${sidecar.stdout()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

// ---- HTTP/2 client ----

export interface H2Result {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
}

export function connectH2(port: number, settings: http2.Settings = {}): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`http://127.0.0.1:${port}`, { settings });
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => {});
      resolve(s);
    });
    s.once('error', reject);
  });
}

/**
 * One HTTP/2 exchange. Fails with a precise message when the stream never ends: in particular when the whole body
 * announced by content-length arrived but END_STREAM (or trailers) did not follow within `endGraceMs`.
 */
export function h2Request(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer | string | Readable,
  opts: { timeoutMs?: number; endGraceMs?: number; sink?: Writable } = {},
): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let status = 0;
    let resHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      req.close(http2.constants.NGHTTP2_CANCEL);
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new Error(`HTTP/2 stream did not finish within ${opts.timeoutMs ?? 30_000}ms (status ${status}, ${received} body bytes)`)),
      opts.timeoutMs ?? 30_000,
    );
    req.on('response', (h) => {
      status = Number(h[':status']);
      resHeaders = h;
    });
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => {
      received += c.length;
      if (opts.sink) {
        if (!opts.sink.write(c)) {
          req.pause();
          opts.sink.once('drain', () => req.resume());
        }
      } else chunks.push(c);
      const cl = Number(resHeaders['content-length'] ?? NaN);
      if (received === cl && opts.endGraceMs !== 0) {
        graceTimer = setTimeout(
          () => fail(new Error(`HTTP/2 response body complete (${received} of content-length ${cl} bytes) but the stream never ended (no END_STREAM / trailers within ${opts.endGraceMs ?? 5000}ms)`)),
          opts.endGraceMs ?? 5000,
        );
      }
    });
    req.on('error', (err) => fail(err));
    req.on('end', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(graceTimer);
      const done = (): void => resolve({ status, headers: resHeaders, body: Buffer.concat(chunks), trailers });
      if (opts.sink) opts.sink.end(done);
      else done();
    });
    req.on('close', () => {
      if (!settled) fail(new Error(`HTTP/2 stream closed without END_STREAM (rst code ${req.rstCode}, status ${status}, ${received} bytes)`));
    });
    if (body === undefined) return;
    if (body instanceof Readable) {
      body.on('error', (err) => fail(err));
      body.pipe(req);
    } else req.end(body);
  });
}
