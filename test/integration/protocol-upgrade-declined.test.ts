// HTTP/1.1 Upgrade through the sidecar: a tunnel only after the upstream's 101 for the protocol asked for. An
// upstream that declines (answers 200) has its answer relayed as a plain response, and nothing the client sends
// afterwards on that connection reaches the upstream past the routes; the access log shows the real status, and a
// real tunnel's line (status 101, its duration and bytes) is written when the tunnel ends.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { RawConnection, waitForLogLine } from '../helpers/proto-http.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { sleep } from '../helpers/strict-net.js';
import { startRawUpstream, startUpstream, type TestUpstream } from '../helpers/upstream.js';

const UPGRADE = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

describe('protocol: declined and mismatched upgrades', () => {
  let app: TestUpstream;
  let wrong: Awaited<ReturnType<typeof startRawUpstream>>;
  let wrongRequests = '';
  let wss: WebSocketServer;
  const wsHeaders: Array<Record<string, string | string[] | undefined>> = [];
  let sidecar: RunningSidecar;
  let port: number;

  before(async () => {
    // Ignores Upgrade: answers every request as a plain one.
    app = await startUpstream((req, res) => {
      if (req.url === '/ws/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('part one, ');
        setTimeout(() => res.end('part two'), 50);
        return;
      }
      const text = `plain answer to ${req.url}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
    // Switches, but to a protocol nobody asked for.
    wrong = await startRawUpstream((s) => {
      s.on('data', (d: Buffer) => {
        wrongRequests += d.toString('latin1');
        if (wrongRequests.includes('\r\n\r\n')) s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n');
      });
    });
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    wss.on('connection', (ws, req) => {
      wsHeaders.push(req.headers);
      ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data as Buffer, { binary: isBinary }));
    });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { name: blocked, match: { prefix: /blocked }, direct_response: { status: 403, body: "forbidden" } }
      - { name: ws, match: { prefix: /ws }, cluster: app, request_headers: { set: { x-edited: "yes" } } }
      - { name: wrong, match: { prefix: /wrong }, cluster: wrong }
      - { name: real, match: { prefix: /real }, cluster: wsapp, request_headers: { set: { x-edited: "real" } } }
clusters:
  - { name: app, endpoints: ["${app.address}"] }
  - { name: wrong, endpoints: ["${wrong.address}"] }
  - { name: wsapp, endpoints: ["127.0.0.1:${(wss.address() as AddressInfo).port}"] }
`);
    port = sidecar.ports.in!;
  });
  after(async () => {
    await sidecar?.stop();
    await app?.close();
    await wrong?.close();
    for (const c of wss?.clients ?? []) c.terminate();
    await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
  });

  const seen = (path: string): number => app.requests.filter((r) => r.url === path).length;

  it('relays a declined upgrade (200) as a plain response; the next request on the socket is routed (403), never tunnelled', { timeout: 20_000 }, async () => {
    const conn = await RawConnection.open(port);
    try {
      await conn.write(`GET /ws/declined HTTP/1.1\r\nHost: app.local\r\n${UPGRADE}X-Request-Id: declined-1\r\n\r\n`);
      const res = await conn.readResponse({ timeoutMs: 5000 });
      assert.equal(res.status, 200, res.raw.toString('latin1'));
      assert.equal(res.body.toString(), 'plain answer to /ws/declined');
      assert.equal(res.headers.upgrade, undefined, 'no Upgrade header on a response that did not switch');
      await conn.write('GET /blocked/secret HTTP/1.1\r\nHost: app.local\r\n\r\n').catch(() => {});
      // The connection is either closed, or it answers the routed request: 403 from the direct_response, never the app.
      await conn.waitClosed(3000);
      const rest = conn.pending.toString('latin1');
      if (rest.length > 0) assert.match(rest, /^HTTP\/1\.1 403 /, rest);
    } finally {
      conn.close();
    }
    await sleep(300);
    assert.equal(seen('/blocked/secret'), 0, 'the request after a declined upgrade reached the app');
    assert.equal(seen('/ws/declined'), 1);
    assert.equal(app.requests.find((r) => r.url === '/ws/declined')!.headers['x-edited'], 'yes', 'route request_headers apply to the upgrade request');
    const line = await waitForLogLine(sidecar, (l) => l.request_id === 'declined-1');
    assert.equal(line.status, 200);
    assert.equal(line.route, 'ws');
  });

  it('never forwards bytes pipelined behind a declined upgrade request', { timeout: 20_000 }, async () => {
    const conn = await RawConnection.open(port);
    try {
      await conn.write(
        `GET /ws/pipelined HTTP/1.1\r\nHost: app.local\r\n${UPGRADE}X-Request-Id: declined-2\r\n\r\n` +
          'GET /blocked/pipelined HTTP/1.1\r\nHost: app.local\r\n\r\nPOST /ws/smuggled HTTP/1.1\r\nHost: app.local\r\nContent-Length: 0\r\n\r\n',
      );
      const res = await conn.readResponse({ timeoutMs: 5000 });
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), 'plain answer to /ws/pipelined');
      assert.equal(await conn.waitClosed(3000), true, 'the connection closes after a declined upgrade');
    } finally {
      conn.close();
    }
    await sleep(300);
    assert.equal(seen('/blocked/pipelined'), 0);
    assert.equal(seen('/ws/smuggled'), 0);
    const line = await waitForLogLine(sidecar, (l) => l.request_id === 'declined-2');
    assert.equal(line.status, 200);
  });

  it('relays a declined upgrade whose body has no length, chunked, whole', { timeout: 20_000 }, async () => {
    const conn = await RawConnection.open(port);
    try {
      await conn.write(`GET /ws/chunked HTTP/1.1\r\nHost: app.local\r\n${UPGRADE}\r\n`);
      const res = await conn.readResponse({ timeoutMs: 5000 });
      assert.equal(res.status, 200);
      assert.equal(res.chunked, true);
      assert.equal(res.body.toString(), 'part one, part two');
      assert.equal(res.headers.connection, 'close');
      assert.equal(await conn.waitClosed(3000), true);
    } finally {
      conn.close();
    }
  });

  it('serves an upgrade request to a route without a cluster as a plain request (the direct_response 403)', { timeout: 20_000 }, async () => {
    const conn = await RawConnection.open(port);
    try {
      await conn.write(`GET /blocked/ws HTTP/1.1\r\nHost: app.local\r\n${UPGRADE}\r\n`);
      const res = await conn.readResponse({ timeoutMs: 5000 });
      assert.equal(res.status, 403, res.raw.toString('latin1'));
      assert.equal(res.body.toString(), 'forbidden');
    } finally {
      conn.close();
    }
    assert.equal(seen('/blocked/ws'), 0);
  });

  it('refuses an upgrade request with an invalid Host (400 DPE, logged), and forwards nothing', { timeout: 20_000 }, async () => {
    const conn = await RawConnection.open(port);
    try {
      await conn.write(`GET /ws/bad-host HTTP/1.1\r\nHost: user@evil\r\n${UPGRADE}\r\n`);
      const res = await conn.readResponse({ timeoutMs: 5000 });
      assert.equal(res.status, 400, res.raw.toString('latin1'));
      assert.equal(res.headers['x-sidecar-flag'], 'DPE');
      assert.equal(await conn.waitClosed(3000), true);
    } finally {
      conn.close();
    }
    assert.equal(seen('/ws/bad-host'), 0);
    const line = await waitForLogLine(sidecar, (l) => l.path === '/ws/bad-host');
    assert.equal(line.status, 400);
  });

  it('answers 502 UPE when the upstream switches to a protocol that was not asked for, and forwards nothing after', { timeout: 20_000 }, async () => {
    const conn = await RawConnection.open(port);
    try {
      await conn.write(`GET /wrong/x HTTP/1.1\r\nHost: app.local\r\n${UPGRADE}X-Request-Id: wrong-1\r\n\r\nGET /wrong/after HTTP/1.1\r\nHost: app.local\r\n\r\n`);
      const res = await conn.readResponse({ timeoutMs: 5000 });
      assert.equal(res.status, 502, res.raw.toString('latin1'));
      assert.equal(res.headers['x-sidecar-flag'], 'UPE');
      assert.equal(await conn.waitClosed(3000), true);
    } finally {
      conn.close();
    }
    await sleep(200);
    assert.doesNotMatch(wrongRequests, /\/wrong\/after/);
    const line = await waitForLogLine(sidecar, (l) => l.request_id === 'wrong-1');
    assert.equal(line.status, 502);
    assert.equal(line.response_flag, 'UPE');
  });

  it('tunnels after a real 101: header edits reach the upstream; the log line (101, duration, bytes) is written when the tunnel ends', { timeout: 20_000 }, async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/real/chat`, { headers: { 'x-request-id': 'real-1' } });
    const got: string[] = [];
    ws.on('message', (d: RawData) => got.push(String(d)));
    await once(ws, 'open');
    ws.send('ping through');
    const end = Date.now() + 5000;
    while (got.length === 0 && Date.now() < end) await sleep(20);
    assert.deepEqual(got, ['ping through']);
    assert.equal(wsHeaders.at(-1)!['x-edited'], 'real');
    await sleep(400);
    assert.equal(sidecar.accessLog().find((l) => l.request_id === 'real-1'), undefined, 'the line waits for the tunnel to end');
    const closed = once(ws, 'close');
    ws.close(1000, 'done');
    await closed;
    const line = await waitForLogLine(sidecar, (l) => l.request_id === 'real-1');
    assert.equal(line.status, 101);
    assert.equal(line.route, 'real');
    assert.ok(Number(line.duration_ms) >= 400, `duration_ms ${line.duration_ms} covers the tunnel`);
    assert.ok(Number(line.bytes_in) > 0 && Number(line.bytes_out) > 0, `bytes ${line.bytes_in}/${line.bytes_out}`);
  });
});
