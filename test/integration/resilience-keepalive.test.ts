// The keep-alive race: an upstream closes an idle pooled connection just as the sidecar reuses it. Bodiless requests
// are replayed once on a fresh connection; pooled sockets expire 1 s before an announced Keep-Alive timeout.
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';

interface RawUpstream {
  readonly address: string;
  /** Requests whose head arrived, in order: [connection number, request number on that connection]. */
  readonly seen: Array<[number, number]>;
  connections(): number;
  close(): Promise<void>;
}

type Mode =
  /** Announces Keep-Alive: timeout=2 and closes sockets idle for 2 s. */
  | { kind: 'announced' }
  /** Closes sockets idle for `idleMs`, announcing nothing. */
  | { kind: 'silent'; idleMs: number }
  /** Closes a connection, without answering, whenever a second request arrives on it (the race, every time). */
  | { kind: 'close-on-reuse' };

/** A tiny HTTP/1.1 server on raw sockets, so what it announces and when it closes are exact. */
async function startRaw(mode: Mode): Promise<RawUpstream> {
  const seen: Array<[number, number]> = [];
  const sockets = new Set<net.Socket>();
  let conns = 0;
  const server = net.createServer((socket) => {
    const id = ++conns;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let n = 0;
    let buf = '';
    let idle: NodeJS.Timeout | undefined;
    const armIdle = (): void => {
      const ms = mode.kind === 'announced' ? 2000 : mode.kind === 'silent' ? mode.idleMs : 0;
      if (ms > 0) idle = setTimeout(() => socket.destroy(), ms);
    };
    armIdle();
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        buf = buf.slice(end + 4 + len);
        clearTimeout(idle);
        n++;
        seen.push([id, n]);
        if (mode.kind === 'close-on-reuse' && n > 1) {
          socket.destroy();
          return;
        }
        const extra = mode.kind === 'announced' ? 'keep-alive: timeout=2\r\n' : '';
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 3\r\n${extra}\r\nok\n`);
        armIdle();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    seen,
    connections: () => conns,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function replays(metrics: string, cluster: string): number {
  const m = new RegExp(`^sidecar_upstream_stale_connection_replays_total\\{cluster="${cluster}"\\} (\\d+)`, 'm').exec(metrics);
  return m ? Number(m[1]) : 0;
}

describe('keep-alive race', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let announced: RawUpstream;
  let silent: RawUpstream;
  let racy: RawUpstream;

  before(async () => {
    announced = await startRaw({ kind: 'announced' });
    silent = await startRaw({ kind: 'silent', idleMs: 300 });
    racy = await startRaw({ kind: 'close-on-reuse' });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: /announced }
        cluster: announced
      - match: { prefix: /silent }
        cluster: silent
      - match: { prefix: /racy }
        cluster: racy
clusters:
  - name: announced
    endpoints: ["${announced.address}"]
    pool: { max_connections: 1 }
  - name: silent
    endpoints: ["${silent.address}"]
    pool: { max_connections: 1 }
  - name: racy
    endpoints: ["${racy.address}"]
    pool: { max_connections: 1 }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar?.stop();
    await announced?.close();
    await silent?.close();
    await racy?.close();
  });

  it('reuses a socket within, and drops it 1 s before, the announced Keep-Alive timeout', async () => {
    assert.equal((await httpRequest(port, { path: '/announced/1' })).status, 200);
    await sleep(200);
    assert.equal((await httpRequest(port, { path: '/announced/2' })).status, 200);
    assert.equal(announced.connections(), 1, 'reused within the announced timeout');
    // 1.2 s idle: the upstream would still accept (2 s), but the pool expired the socket at 1 s.
    await sleep(1200);
    assert.equal((await httpRequest(port, { path: '/announced/3' })).status, 200);
    assert.equal(announced.connections(), 2);
    assert.deepEqual(announced.seen, [[1, 1], [1, 2], [2, 1]]);
    assert.equal(replays((await httpRequest(sidecar.adminPort, { path: '/metrics' })).body, 'announced'), 0);
  });

  it('replays a bodiless request once on a fresh connection when a reused one is closed under it', async () => {
    for (let i = 1; i <= 4; i++) {
      const method = i === 3 ? 'DELETE' : 'GET';
      const res = await httpRequest(port, { method, path: `/racy/${i}` });
      assert.equal(res.status, 200, `request ${i}: ${res.status} ${String(res.headers['x-sidecar-error'])}`);
    }
    // Every request after the first met a reused socket that the upstream closed, then went through on a new one.
    assert.deepEqual(racy.seen, [[1, 1], [1, 2], [2, 1], [2, 2], [3, 1], [3, 2], [4, 1]]);
    assert.equal(replays((await httpRequest(sidecar.adminPort, { path: '/metrics' })).body, 'racy'), 3);
  });

  it('does not replay a request with a body', async () => {
    const res = await httpRequest(port, { method: 'POST', path: '/racy/post', body: 'payload' });
    assert.ok(res.status >= 500, `got ${res.status}`);
    assert.equal(res.headers['x-sidecar-flag'], 'UC');
    assert.equal(replays((await httpRequest(sidecar.adminPort, { path: '/metrics' })).body, 'racy'), 3);
  });

  it('sequential requests ~300 ms apart to an upstream that silently closes idle sockets after 300 ms never fail', async (t) => {
    for (let i = 0; i < 8; i++) {
      const res = await httpRequest(port, { path: `/silent/${i}` });
      assert.equal(res.status, 200, `request ${i}: ${res.status} ${String(res.headers['x-sidecar-error'])}`);
      await sleep(295 + (i % 3) * 5);
    }
    const n = replays((await httpRequest(sidecar.adminPort, { path: '/metrics' })).body, 'silent');
    t.diagnostic(`replays on a silently closed socket: ${n}; connections: ${silent.connections()}`);
  });
});
