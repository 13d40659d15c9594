// Long-lived exchanges through the sidecar: server-sent events must stream without buffering, and WebSocket upgrades
// (with the `ws` package at both ends) must carry text and binary frames both ways and close cleanly.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { connectH2, waitForLogLine, waitUntil } from '../helpers/proto-http.js';

const EVENT_INTERVAL_MS = 200;

interface Arrival {
  id: number;
  data: string;
  at: number;
}

/** Parses SSE frames out of a text stream as they arrive. */
function sseParser(onEvent: (e: { id: number; data: string }) => void): (text: string) => void {
  let buf = '';
  return (text) => {
    buf += text;
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let id = NaN;
      let data = '';
      for (const line of frame.split('\n')) {
        if (line.startsWith('id: ')) id = Number(line.slice(4));
        else if (line.startsWith('data: ')) data = line.slice(6);
      }
      onEvent({ id, data });
    }
  };
}

describe('protocol: server-sent events and WebSocket', () => {
  let upstream: TestUpstream;
  let wss: WebSocketServer;
  let wsPort = 0;
  let sidecar: RunningSidecar;
  /** Open SSE responses upstream, and how many have closed. */
  let sseOpen = 0;
  let sseClosed = 0;
  const wsUpgrades: http.IncomingHttpHeaders[] = [];
  const wsUrls: string[] = [];
  const wsServerCloses: Array<{ code: number; reason: string }> = [];
  const clients: WebSocket[] = [];

  before(async () => {
    upstream = await startUpstream((req, res) => {
      if (req.url?.startsWith('/events')) {
        sseOpen++;
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
        let n = 0;
        const timer = setInterval(() => res.write(`id: ${n}\ndata: event ${n++}\n\n`), EVENT_INTERVAL_MS);
        res.on('close', () => {
          clearInterval(timer);
          sseClosed++;
        });
        return;
      }
      if (req.url?.startsWith('/quiet-events')) {
        // Head now, first event much later: the client must see the head at once.
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.flushHeaders();
        const timer = setTimeout(() => res.end('data: late\n\n'), 1500);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      res.writeHead(404, { 'content-length': '0' });
      res.end();
    });

    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    wsPort = (wss.address() as AddressInfo).port;
    wss.on('connection', (ws, req) => {
      wsUpgrades.push(req.headers);
      wsUrls.push(req.url ?? '');
      ws.on('close', (code, reason) => wsServerCloses.push({ code, reason: reason.toString() }));
      if (req.url === '/ws/server-closes') {
        ws.send('closing soon');
        setTimeout(() => ws.close(4000, 'server bye'), 50);
        return;
      }
      ws.send('welcome');
      ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data as Buffer, { binary: isBinary }));
    });

    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { name: ws, match: { prefix: /ws }, cluster: wsapp }
      - { name: all, match: { prefix: / }, cluster: app, timeout: 0 }
clusters:
  - name: app
    endpoints: ["${upstream.address}"]
  - name: wsapp
    endpoints: ["127.0.0.1:${wsPort}"]
`);
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await sidecar?.stop();
    await upstream?.close();
    for (const c of wss?.clients ?? []) c.terminate();
    await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
  });

  it('streams server-sent events to an HTTP/1.1 client as they are written (no buffering), in order', { timeout: 20_000 }, async () => {
    const started = Date.now();
    const arrivals: Arrival[] = [];
    const req = http.get({ host: '127.0.0.1', port: sidecar.ports.in, path: '/events', agent: false, headers: { accept: 'text/event-stream' } });
    try {
      const res = (await once(req, 'response')) as [http.IncomingMessage];
      assert.equal(res[0].statusCode, 200);
      assert.equal(res[0].headers['content-type'], 'text/event-stream');
      res[0].setEncoding('utf8');
      res[0].on('data', sseParser((e) => arrivals.push({ ...e, at: Date.now() - started })));
      await waitUntil(() => arrivals.length >= 1, 5000, 'the first event');
      assert.ok(arrivals[0]!.at < 1000, `first event arrived after ${arrivals[0]!.at}ms`);
      await waitUntil(() => arrivals.length >= 6, 10_000, 'six events');
      assert.deepEqual(arrivals.slice(0, 6).map((a) => a.id), [0, 1, 2, 3, 4, 5]);
      assert.deepEqual(arrivals.slice(0, 6).map((a) => a.data), ['event 0', 'event 1', 'event 2', 'event 3', 'event 4', 'event 5']);
      // Delivered one by one as written, not in a burst at the end.
      const spread = arrivals[5]!.at - arrivals[1]!.at;
      assert.ok(spread >= 3 * EVENT_INTERVAL_MS, `events 1..5 arrived within ${spread}ms of each other: ${JSON.stringify(arrivals)}`);
    } finally {
      req.destroy();
    }
  });

  it('sends the response head to an HTTP/1.1 client at once when the first event comes later', { timeout: 20_000 }, async () => {
    const started = Date.now();
    const req = http.get({ host: '127.0.0.1', port: sidecar.ports.in, path: '/quiet-events', agent: false });
    try {
      const [res] = (await once(req, 'response')) as [http.IncomingMessage];
      const headAt = Date.now() - started;
      assert.equal(res.statusCode, 200);
      assert.ok(headAt < 1000, `the head arrived after ${headAt}ms, with the first event`);
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      await once(res, 'end');
      assert.equal(body, 'data: late\n\n');
    } finally {
      req.destroy();
    }
  });

  it('streams server-sent events to an HTTP/2 client without buffering', { timeout: 20_000 }, async () => {
    const session = await connectH2(sidecar.ports.in!);
    try {
      const started = Date.now();
      const arrivals: Arrival[] = [];
      const stream = session.request({ ':path': '/events', accept: 'text/event-stream' });
      stream.setEncoding('utf8');
      stream.on('data', sseParser((e) => arrivals.push({ ...e, at: Date.now() - started })));
      stream.on('error', () => {});
      await waitUntil(() => arrivals.length >= 1, 5000, 'the first event');
      assert.ok(arrivals[0]!.at < 1000, `first event arrived after ${arrivals[0]!.at}ms`);
      await waitUntil(() => arrivals.length >= 4, 10_000, 'four events');
      assert.deepEqual(arrivals.slice(0, 4).map((a) => a.id), [0, 1, 2, 3]);
      stream.close();
    } finally {
      session.destroy();
    }
  });

  it('closes the upstream event stream when the client goes away', { timeout: 20_000 }, async () => {
    await waitUntil(() => sseClosed === sseOpen, 5000, `upstream SSE responses to close (open ${sseOpen}, closed ${sseClosed})`);
  });

  it('tunnels a WebSocket: text and binary both ways, then a clean client-initiated close', { timeout: 20_000 }, async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${sidecar.ports.in}/ws/chat?room=1`, { headers: { 'x-request-id': 'ws-req-1' } });
    clients.push(ws);
    const received: Array<{ data: Buffer; isBinary: boolean }> = [];
    ws.on('message', (data: RawData, isBinary: boolean) => received.push({ data: Buffer.from(data as Buffer), isBinary }));
    await once(ws, 'open');
    await waitUntil(() => received.length >= 1, 5000, 'the welcome message');
    assert.equal(received[0]!.isBinary, false);
    assert.equal(received[0]!.data.toString(), 'welcome');

    ws.send('hello through the sidecar');
    const bin = Buffer.from([0, 1, 2, 253, 254, 255]);
    ws.send(bin);
    const big = Buffer.alloc(1024 * 1024 + 7);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    ws.send(big);
    await waitUntil(() => received.length >= 4, 10_000, 'three echoes');
    assert.equal(received[1]!.isBinary, false);
    assert.equal(received[1]!.data.toString(), 'hello through the sidecar');
    assert.equal(received[2]!.isBinary, true);
    assert.ok(received[2]!.data.equals(bin));
    assert.equal(received[3]!.isBinary, true);
    assert.ok(received[3]!.data.equals(big), '1 MiB binary frame echoed intact');

    const closed = once(ws, 'close') as Promise<[number, Buffer]>;
    ws.close(1000, 'bye');
    const [code, reason] = await closed;
    assert.equal(code, 1000);
    assert.equal(reason.toString(), 'bye');
    await waitUntil(() => wsServerCloses.length >= 1, 5000, 'the server to see the close');
    assert.deepEqual(wsServerCloses[0], { code: 1000, reason: 'bye' });

    assert.equal(wsUrls[0], '/ws/chat?room=1');
    assert.equal(wsUpgrades[0]!['x-forwarded-for'], '127.0.0.1');
    assert.equal(wsUpgrades[0]!['x-request-id'], 'ws-req-1');
    const line = await waitForLogLine(sidecar, (l) => l.request_id === 'ws-req-1');
    assert.equal(line.status, 101);
    assert.equal(line.route, 'ws');
  });

  it('passes a server-initiated WebSocket close through to the client', { timeout: 20_000 }, async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${sidecar.ports.in}/ws/server-closes`);
    clients.push(ws);
    const messages: string[] = [];
    ws.on('message', (d: RawData) => messages.push(String(d)));
    const closed = once(ws, 'close') as Promise<[number, Buffer]>;
    await once(ws, 'open');
    const [code, reason] = await closed;
    assert.deepEqual(messages, ['closing soon']);
    assert.equal(code, 4000);
    assert.equal(reason.toString(), 'server bye');
  });
});
