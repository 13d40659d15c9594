// WebSocket upgrades and CONNECT go through the pipeline: listener filters (and their per-route overrides) apply to
// them before any tunnel is opened, and a refused one never reaches the upstream.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingHttpHeaders } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor } from '../helpers/strict-net.js';

/** Opens a WebSocket through the sidecar: the echoed message, or the status of the refused handshake. */
function open(port: number, path: string, headers: Record<string, string> = {}): Promise<{ echoed?: string; status?: number; flag?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers, handshakeTimeout: 5000 });
    ws.on('open', () => ws.send('ping'));
    ws.on('message', (data: RawData) => {
      ws.close();
      resolve({ echoed: String(data) });
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode, flag: String(res.headers['x-sidecar-flag']) });
      res.resume();
      ws.terminate();
    });
    ws.on('error', reject);
  });
}

/** A CONNECT request on a raw socket: the first response line and headers. */
function connect(port: number, target: string, extra: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${extra}\r\n`));
    let data = '';
    s.on('data', (d: Buffer) => {
      data += d.toString('latin1');
      if (data.includes('\r\n\r\n')) {
        s.destroy();
        resolve(data);
      }
    });
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
  });
}

describe('tunnels through the pipeline', () => {
  let sidecar: RunningSidecar;
  let wss: WebSocketServer;
  let target: net.Server;
  const seen: IncomingHttpHeaders[] = [];

  before(async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    wss.on('connection', (ws, req) => {
      seen.push(req.headers);
      ws.on('message', (data: RawData) => ws.send(String(data)));
    });
    target = net.createServer((s) => s.end());
    target.listen(0, '127.0.0.1');
    await once(target, 'listening');
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    filters:
      - { type: header_mutation, config: { request: { set: { x-guard: listener } } } }
      - { type: fault, config: { header_control: true } }
    routes:
      - { name: ws, match: { prefix: /ws }, cluster: wsapp }
      - { name: open, match: { prefix: /open }, cluster: wsapp, filter_overrides: { fault: { disabled: true } } }
  - name: fwd
    port: 0
    mode: forward
    forward: { allow_connect: true, connect_ports: [${(target.address() as AddressInfo).port}] }
    filters:
      - { type: fault, config: { header_control: true } }
clusters:
  - { name: wsapp, endpoints: ["127.0.0.1:${(wss.address() as AddressInfo).port}"] }
`);
  });

  after(async () => {
    await sidecar?.stop();
    for (const c of wss?.clients ?? []) c.terminate();
    await new Promise<void>((resolve) => (wss ? wss.close(() => resolve()) : resolve()));
    await new Promise<void>((resolve) => (target ? target.close(() => resolve()) : resolve()));
  });

  it('a listener filter edits the upgrade request on its way to the upstream', async () => {
    const r = await open(sidecar.ports.in!, '/ws/a');
    assert.equal(r.echoed, 'ping');
    assert.equal(seen.at(-1)!['x-guard'], 'listener');
  });

  it('a listener filter can refuse an upgrade: the upstream never sees it, the access log has its line', async () => {
    const before = seen.length;
    const r = await open(sidecar.ports.in!, '/ws/refused', { 'x-sidecar-fault-abort': '403', 'x-request-id': 'ws-refused' });
    assert.equal(r.status, 403);
    assert.equal(r.flag, 'FI');
    assert.equal(seen.length, before, 'the refused upgrade reached the upstream');
    const line = await accessLogFor(sidecar, '/ws/refused');
    assert.equal(line.status, 403);
    assert.equal(line.response_flag, 'FI');
  });

  it("a route's override disables the listener filter for its upgrades", async () => {
    const r = await open(sidecar.ports.in!, '/open/x', { 'x-sidecar-fault-abort': '403' });
    assert.equal(r.echoed, 'ping');
  });

  it('CONNECT goes through the listener filters too', async () => {
    const port = (target.address() as AddressInfo).port;
    const refused = await connect(sidecar.ports.fwd!, `127.0.0.1:${port}`, 'x-sidecar-fault-abort: 403\r\n');
    assert.match(refused, /^HTTP\/1\.1 403 /);
    assert.match(refused, /x-sidecar-flag: FI/);
    const ok = await connect(sidecar.ports.fwd!, `127.0.0.1:${port}`, '');
    assert.match(ok, /^HTTP\/1\.1 200 Connection Established/);
  });
});
