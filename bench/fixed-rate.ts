// Open-loop load at a fixed request rate, measuring each response's latency (what wrk cannot do): prints JSON percentiles.
// Usage: fixed-rate HOST:PORT RATE SECONDS [CONNECTIONS] [h1|h1-tls|h2c|h2-tls] (TLS without verification: a bench cert).
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';

const [, , target = '127.0.0.1:18080', rateArg = '2000', secondsArg = '10', connectionsArg = '32', modeArg = 'h1'] = process.argv;
const [host, portText] = target.split(':') as [string, string];
const rate = Number(rateArg);
const seconds = Number(secondsArg);
const connections = Number(connectionsArg);
const REQUEST = Buffer.from(`GET / HTTP/1.1\r\nhost: ${target}\r\nuser-agent: fixed-rate\r\n\r\n`);

interface Conn {
  socket: net.Socket;
  /** Send times of requests awaiting a response, in order (HTTP/1.1 answers in order). */
  pending: number[];
  buf: string;
}

const latencies: number[] = [];
let errors = 0;
let sent = 0;

function open(): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket =
      modeArg === 'h1-tls'
        ? tls.connect({ host, port: Number(portText), rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }).setNoDelay(true)
        : net.connect({ host, port: Number(portText), noDelay: true });
    const conn: Conn = { socket, pending: [], buf: '' };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      conn.buf += d;
      // Responses are small with content-length; count complete ones.
      for (;;) {
        const head = conn.buf.indexOf('\r\n\r\n');
        if (head < 0) break;
        const m = /content-length: *(\d+)/i.exec(conn.buf.slice(0, head));
        const len = m ? Number(m[1]) : 0;
        if (conn.buf.length < head + 4 + len) break;
        conn.buf = conn.buf.slice(head + 4 + len);
        const t0 = conn.pending.shift();
        if (t0 !== undefined) latencies.push(performance.now() - t0);
      }
    });
    socket.once(modeArg === 'h1-tls' ? 'secureConnect' : 'connect', () => resolve(conn));
    socket.once('error', (e) => {
      errors++;
      reject(e);
    });
  });
}

/** HTTP/2 (h2c prior knowledge or over TLS): a few sessions, requests spread over them; latency to the response end. */
async function mainH2(): Promise<void> {
  const url = `${modeArg === 'h2-tls' ? 'https' : 'http'}://${target}`;
  const sessions = await Promise.all(
    Array.from({ length: Math.max(1, Math.min(connections, 8)) }, () => {
      const s = http2.connect(url, { rejectUnauthorized: false });
      s.on('error', () => errors++);
      return new Promise<http2.ClientHttp2Session>((resolve) => s.once('connect', () => resolve(s)));
    }),
  );
  const start = performance.now();
  const total = Math.round(rate * seconds);
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
      while (sent < due) {
        const t0 = performance.now();
        const req = sessions[sent % sessions.length]!.request({ ':path': '/', 'user-agent': 'fixed-rate' });
        req.on('error', () => errors++);
        req.on('end', () => latencies.push(performance.now() - t0));
        req.resume();
        req.end();
        sent++;
      }
      if (sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await report(() => sessions.forEach((s) => s.destroy()));
}

async function report(close: () => void): Promise<void> {
  const deadline = performance.now() + 5000;
  while (latencies.length < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  close();
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  process.stdout.write(
    `${JSON.stringify({ sent, received: latencies.length, errors, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: latencies[latencies.length - 1] ?? NaN })}\n`,
  );
}

async function main(): Promise<void> {
  const conns = await Promise.all(Array.from({ length: connections }, open));
  // Warm-up: one request per connection.
  const start = performance.now();
  const total = Math.round(rate * seconds);
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
      while (sent < due) {
        // Pick the least-busy connection so a slow response does not queue new requests behind it.
        let best = conns[next % conns.length]!;
        for (let i = 0; i < conns.length; i++) {
          const c = conns[(next + i) % conns.length]!;
          if (c.pending.length < best.pending.length) best = c;
          if (best.pending.length === 0) break;
        }
        next++;
        best.pending.push(performance.now());
        best.socket.write(REQUEST);
        sent++;
      }
      // Sleep to the next millisecond rather than spin: the upstream shares this CPU.
      if (sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await report(() => conns.forEach((c) => c.socket.destroy()));
}

void (modeArg.startsWith('h2') ? mainH2() : main());
