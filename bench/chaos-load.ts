// Open-loop load for the chaos run (after bench/fixed-rate.ts), counting what a client would see as failures:
// non-2xx answers, requests lost on a closed or failed connection, and requests still unanswered at the end.
// Usage: node dist/bench/chaos-load.js <host:port> <rate> <seconds> [connections]; prints one JSON line on stdout.
import net from 'node:net';

const [, , target = '127.0.0.1:18210', rateArg = '500', secondsArg = '30', connectionsArg = '20'] = process.argv;
const [host, portText] = target.split(':') as [string, string];
const port = Number(portText);
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const connections = Number(connectionsArg);
const REQUEST = Buffer.from(`GET /chaos HTTP/1.1\r\nhost: ${target}\r\nuser-agent: chaos-load\r\n\r\n`);
const DRAIN_MS = 5000;

interface Conn {
  socket: net.Socket;
  /** Send times of requests awaiting a response, in order (HTTP/1.1 answers in order). */
  pending: number[];
  buf: Buffer;
  dead: boolean;
}

const latencies: number[] = [];
const statuses: Record<string, number> = {};
const flags: Record<string, number> = {};
const errorsPerSecond: Record<string, number> = {};
let sent = 0;
let ok = 0;
let non2xx = 0;
let connErrors = 0; // requests lost with a connection
let connectFailures = 0; // failed connects to the sidecar
let unanswered = 0;
const start = performance.now();

const second = (): string => String(Math.floor((performance.now() - start) / 1000));
const clientError = (): void => {
  const s = second();
  errorsPerSecond[s] = (errorsPerSecond[s] ?? 0) + 1;
};

/** Parses complete responses off the front of conn.buf; false when more bytes are needed. */
function takeResponse(conn: Conn): boolean {
  const buf = conn.buf;
  const head = buf.indexOf('\r\n\r\n');
  if (head < 0) return false;
  const headText = buf.subarray(0, head).toString('latin1');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(headText)?.[1] ?? 0);
  let end: number;
  if (/\r\ntransfer-encoding: *chunked/i.test(headText)) {
    let at = head + 4;
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at);
      if (lineEnd < 0) return false;
      const size = parseInt(buf.subarray(at, lineEnd).toString('latin1'), 16);
      if (!Number.isFinite(size) || size < 0) {
        conn.socket.destroy(); // unparseable: its pending requests count as lost
        return false;
      }
      if (size === 0) {
        // Optional trailers, then an empty line: the first CRLFCRLF from the end of the last-chunk line.
        const trailerEnd = buf.indexOf('\r\n\r\n', lineEnd);
        if (trailerEnd < 0) return false;
        end = trailerEnd + 4;
        break;
      }
      if (buf.length < lineEnd + 2 + size + 2) return false;
      at = lineEnd + 2 + size + 2;
    }
  } else {
    const m = /\r\ncontent-length: *(\d+)/i.exec(headText);
    const len = m ? Number(m[1]) : 0;
    if (buf.length < head + 4 + len) return false;
    end = head + 4 + len;
  }
  conn.buf = buf.subarray(end);
  const t0 = conn.pending.shift();
  if (t0 !== undefined) latencies.push(performance.now() - t0);
  statuses[status] = (statuses[status] ?? 0) + 1;
  if (status >= 200 && status < 300) ok++;
  else {
    non2xx++;
    clientError();
    const flag = /\r\nx-sidecar-flag: *([^\r]*)/i.exec(headText)?.[1];
    if (flag) flags[flag] = (flags[flag] ?? 0) + 1;
  }
  if (/\r\nconnection: *close/i.test(headText)) conn.socket.end();
  return true;
}

function open(): Promise<Conn> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, noDelay: true });
    const conn: Conn = { socket, pending: [], buf: Buffer.alloc(0), dead: false };
    let connected = false;
    socket.on('data', (d: Buffer) => {
      conn.buf = conn.buf.length ? Buffer.concat([conn.buf, d]) : d;
      while (conn.buf.length && takeResponse(conn));
    });
    const fail = (): void => {
      if (conn.dead) return;
      conn.dead = true;
      if (!connected) connectFailures++;
      // Every request still waiting on this connection is lost: a client-visible error.
      for (let i = 0; i < conn.pending.length; i++) clientError();
      connErrors += conn.pending.length;
      conn.pending = [];
      resolve(conn);
    };
    socket.once('connect', () => {
      connected = true;
      resolve(conn);
    });
    socket.on('error', fail);
    socket.on('close', fail);
  });
}

async function main(): Promise<void> {
  let conns = await Promise.all(Array.from({ length: connections }, open));
  const total = Math.round(rate * seconds);
  const t0 = performance.now();
  let next = 0;
  const opening: boolean[] = conns.map(() => false);
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      // Replace dead connections, one connect in flight per slot.
      for (let i = 0; i < conns.length; i++) {
        if (conns[i]!.dead && !opening[i]) {
          opening[i] = true;
          void open().then((c) => {
            opening[i] = false;
            conns[i] = c;
          });
        }
      }
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
      while (sent < due) {
        // Least-busy live connection, so a slow response does not queue new requests behind it.
        let best: Conn | undefined;
        for (let i = 0; i < conns.length; i++) {
          const c = conns[(next + i) % conns.length]!;
          if (c.dead) continue;
          if (!best || c.pending.length < best.pending.length) best = c;
          if (best.pending.length === 0) break;
        }
        next++;
        sent++;
        if (!best) {
          // No usable connection to the sidecar: the request fails on the client side.
          connErrors++;
          clientError();
          continue;
        }
        best.pending.push(performance.now());
        best.socket.write(REQUEST);
      }
      if (sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const live = (): Conn[] => conns.filter((c) => !c.dead);
  const deadline = performance.now() + DRAIN_MS;
  while (live().some((c) => c.pending.length > 0) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  for (const c of live()) {
    unanswered += c.pending.length;
    c.pending = [];
  }
  for (const c of conns) {
    c.dead = true;
    c.socket.destroy();
  }
  conns = [];
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  const errors = non2xx + connErrors + unanswered;
  process.stdout.write(
    `${JSON.stringify({
      sent,
      ok,
      errors,
      non2xx,
      connErrors,
      connectFailures,
      unanswered,
      statuses,
      flags,
      errorsPerSecond,
      p50: q(0.5),
      p99: q(0.99),
      max: latencies[latencies.length - 1] ?? NaN,
    })}\n`,
  );
  process.exit(0);
}

void main();
