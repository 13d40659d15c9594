// Test helpers (strict-/failure-/routing- suites): a loopback port whose connects hang, a node:http client that keeps
// raw headers, a chunk-by-chunk raw socket writer, raw response parsing and access-log lookup.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import type { RunningSidecar } from './sidecar.js';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Tries one loopback connect; true when it completes within `ms`. The socket is kept open when it connects. */
function probe(port: number, ms: number, keep: net.Socket[]): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, ms);
    s.once('connect', () => {
      clearTimeout(t);
      keep.push(s);
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(true); // refused / reset: not a hang
    });
  });
}

export interface Blackhole {
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

/**
 * A loopback address:port where TCP connects hang (SYNs are dropped): a child process listens with backlog 1, is
 * SIGSTOPped so it never accepts, and its accept queue is filled. Throws when connects still complete.
 */
export async function startBlackhole(): Promise<Blackhole> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['-e', "const s=require('net').createServer(()=>{});s.listen({port:0,host:'127.0.0.1',backlog:1},()=>console.log(s.address().port))"],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const kill = (): void => {
    try {
      child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  };
  process.once('exit', kill);
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', () => reject(new Error('blackhole child exited')));
  });
  child.kill('SIGSTOP');
  const fillers: net.Socket[] = [];
  let hung = false;
  for (let i = 0; i < 32 && !hung; i++) hung = !(await probe(port, 300, fillers));
  // A second probe confirms new connects keep hanging.
  if (!hung || (await probe(port, 300, fillers))) {
    for (const s of fillers) s.destroy();
    kill();
    throw new Error('could not make a loopback connect hang (accept queue did not fill)');
  }
  return {
    port,
    address: `127.0.0.1:${port}`,
    async close() {
      for (const s of fillers) s.destroy();
      kill();
      process.off('exit', kill);
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)));
    },
  };
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
}

/** One HTTP/1.1 request with node:http (no agent pooling unless one is given). */
export function httpRequest(
  port: number,
  opts: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer; agent?: http.Agent; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: opts.headers,
        agent: opts.agent ?? false,
        timeout: opts.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** All values of a header in node rawHeaders form (case-insensitive name). */
export function rawValues(rawHeaders: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) out.push(rawHeaders[i + 1]!);
  return out;
}

export interface RawResponse {
  status: number | undefined;
  headers: Record<string, string>;
  body: string;
}

/** Parses the first response of raw HTTP/1.x bytes: status, lower-cased headers (last wins) and what follows the head. */
export function parseRawResponse(data: string): RawResponse {
  const end = data.indexOf('\r\n\r\n');
  const head = (end < 0 ? data : data.slice(0, end)).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '');
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: m ? Number(m[1]) : undefined, headers, body: end < 0 ? '' : data.slice(end + 4) };
}

/**
 * Writes raw parts one after another (waiting `gapMs` between them) and collects the reply until the server closes
 * or `waitMs` after the last write.
 */
export function rawExchange(port: number, parts: Array<string | Buffer>, gapMs: number, waitMs = 1500): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data, closed });
    };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (data += d));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', async () => {
      for (let i = 0; i < parts.length; i++) {
        if (i > 0) await sleep(gapMs);
        if (done || socket.destroyed) return;
        socket.write(parts[i]!);
      }
      timer = setTimeout(() => finish(false), waitMs);
    });
  });
}

/** Waits for the access-log line whose path is `path`. */
export async function accessLogFor(sidecar: RunningSidecar, path: string, timeoutMs = 5000): Promise<Record<string, unknown>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const line = sidecar.accessLog().find((l) => l.path === path);
    if (line) return line;
    if (Date.now() > end) throw new Error(`no access log line for ${path}:\n${sidecar.stdout()}`);
    await sleep(25);
  }
}

/** Polls `cond` until it holds or `timeoutMs` passes; returns its last value. */
export async function waitUntil(cond: () => boolean, timeoutMs = 2000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await sleep(20);
  }
  return true;
}

/**
 * Writes raw bytes and resolves as soon as one complete Content-Length-framed response has arrived (or the server
 * closes, or `waitMs` passes). `complete` says whether the whole response body arrived.
 */
export function rawFirstResponse(port: number, payload: string | Buffer, waitMs = 3000): Promise<{ data: string; closed: boolean; complete: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    let done = false;
    const isComplete = (): boolean => {
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(data.slice(0, end + 2));
      return m !== null && Buffer.byteLength(data.slice(end + 4), 'latin1') >= Number(m[1]);
    };
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data, closed, complete: isComplete() });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      data += d;
      if (isComplete()) finish(false);
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', () => socket.write(payload));
  });
}
