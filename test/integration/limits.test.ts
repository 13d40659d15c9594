// Listener limits and robustness: header read timeout, idle timeout, max connections, and garbage that must not crash.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { curl, rawRequest } from '../helpers/client.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { connectH2, h2Request } from '../helpers/proto-http.js';

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

function closedWithin(socket: net.Socket, ms: number): Promise<{ closed: boolean; data: string; after: number }> {
  const start = Date.now();
  return new Promise((resolve) => {
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (data += d));
    const timer = setTimeout(() => resolve({ closed: false, data, after: Date.now() - start }), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ closed: true, data, after: Date.now() - start });
    });
    socket.on('error', () => {});
  });
}

describe('listener limits', () => {
  let upstream: TestUpstream;
  let sidecar: RunningSidecar;
  before(async () => {
    upstream = await startUpstream();
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    limits: { header_read_timeout: 500ms, idle_timeout: 700ms, max_connections: 5 }
    routes: [{ match: { prefix: / }, cluster: app }]
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
`);
  });
  after(async () => {
    await sidecar.stop();
    await upstream.close();
  });

  it('closes a connection whose request head does not arrive within header_read_timeout (slowloris)', async () => {
    const s = await connect(sidecar.ports.in!);
    s.write('GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ');
    const r = await closedWithin(s, 5000);
    assert.equal(r.closed, true, 'connection closed');
    assert.ok(r.after < 3000, `closed after ${r.after} ms`);
    assert.equal(upstream.requests.length, 0);
  });

  it('closes a connection that sends nothing at all within header_read_timeout', async () => {
    const s = await connect(sidecar.ports.in!);
    const r = await closedWithin(s, 5000);
    assert.equal(r.closed, true);
    assert.ok(r.after < 3000, `closed after ${r.after} ms`);
  });

  it('closes an idle keep-alive connection after idle_timeout', async () => {
    const s = await connect(sidecar.ports.in!);
    const done = closedWithin(s, 5000);
    s.write('GET /one HTTP/1.1\r\nHost: a\r\n\r\n');
    const r = await done;
    assert.match(r.data, /^HTTP\/1\.1 200/);
    assert.equal(r.closed, true);
    assert.ok(r.after >= 600 && r.after < 3000, `closed after ${r.after} ms`);
  });

  it('accepts at most max_connections at once', async () => {
    const held = await Promise.all(Array.from({ length: 5 }, () => connect(sidecar.ports.in!)));
    for (const s of held) s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n'); // keep them busy-alive
    await new Promise((r) => setTimeout(r, 100));
    const extra = await connect(sidecar.ports.in!).catch(() => undefined);
    if (extra) {
      const r = await closedWithin(extra, 2000);
      assert.equal(r.closed, true, 'the connection over the limit is closed');
      assert.equal(r.data, '');
    }
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const ok = await curl([`http://127.0.0.1:${sidecar.ports.in}/after`]);
    assert.equal(ok.code, 0, 'serves again once connections are released');
  });

  it('answers 431 past max_headers_count (100 by default) instead of dropping fields, over HTTP/1.1 and HTTP/2', async () => {
    const head = (fields: number): string => {
      let h = 'GET /count HTTP/1.1\r\nHost: a\r\nConnection: close\r\n';
      for (let i = 0; i < fields - 2; i++) h += `x-f-${i}: ${i}\r\n`;
      return h + '\r\n';
    };
    const before = upstream.requests.length;
    const ok = await rawRequest(sidecar.ports.in!, head(100));
    assert.match(ok.data, /^HTTP\/1\.1 200/, ok.data.slice(0, 200));
    const seen = upstream.requests.at(-1)!;
    assert.ok(seen.rawHeaders.includes('x-f-97'), 'the 100th field reached the upstream');
    const over = await rawRequest(sidecar.ports.in!, head(101));
    assert.match(over.data, /^HTTP\/1\.1 431/);
    assert.match(over.data, /101 header fields, over max_headers_count 100/);
    const many = await rawRequest(sidecar.ports.in!, head(3000));
    assert.match(many.data, /^HTTP\/1\.1 431/);
    assert.equal(upstream.requests.length, before + 1, 'only the request within the limit went upstream');

    const session = await connectH2(sidecar.ports.in!);
    try {
      const fields: Record<string, string> = { ':method': 'GET', ':path': '/count-h2' };
      for (let i = 0; i < 101; i++) fields[`x-f-${i}`] = String(i);
      const r = await h2Request(session, fields);
      assert.equal(r.status, 431);
      // Over max_header_bytes (60 KiB by default): a 431 too, not a bare stream reset. (Node's HTTP/2 refuses a
      // header block over 64 KiB itself, whatever the settings, so this stays between the two.)
      const big = await h2Request(session, { ':method': 'GET', ':path': '/big-h2', 'x-big-1': 'v'.repeat(31_000), 'x-big-2': 'v'.repeat(31_000) });
      assert.equal(big.status, 431);
    } finally {
      session.destroy();
    }
  });

  it('survives arbitrary bytes on the listener and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 2048 }), async (bytes) => {
        const r = await rawRequest(sidecar.ports.in!, Buffer.from(bytes), 300);
        if (r.status !== undefined) assert.ok(r.status >= 400 || r.status === 200, `status ${r.status}`);
      }),
      { numRuns: 60 },
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), fc.string({ maxLength: 60 }), async (target, header) => {
        await rawRequest(sidecar.ports.in!, `GET ${target} HTTP/1.1\r\nHost: a\r\nX: ${header}\r\n\r\n`, 300);
      }),
      { numRuns: 60 },
    );
    assert.equal(sidecar.proc.exitCode, null, 'still running');
    const ok = await curl([`http://127.0.0.1:${sidecar.ports.in}/still-alive`]);
    assert.equal(ok.code, 0);
    assert.doesNotMatch(sidecar.stderr(), /uncaught exception|unhandled rejection/);
  });
});
