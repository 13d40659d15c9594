// Tunnel terminals get their upstream socket from the Connector seam (the registry's), with the configured connect
// timeout, for WebSocket upgrades and CONNECT alike.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { loadConfigText } from '../../src/config/load.js';
import { Cancellation } from '../../src/core/cancel.js';
import { HeaderList } from '../../src/core/headers.js';
import type { ProxyRequest, TunnelSlot } from '../../src/core/service.js';
import { newContext } from '../../src/http-server/exchange.js';
import { connectService, upgradeService } from '../../src/listener/tunnel-terminal.js';
import { SidecarMetrics } from '../../src/observability/catalogue.js';
import { RuntimeSnapshot } from '../../src/runtime/snapshot.js';
import { tcpConnector, type ConnectTarget, type Connector } from '../../src/upstream/connector.js';
import { UpstreamRegistry } from '../../src/upstream/registry.js';

/** A connected pair of sockets on loopback: [ours, theirs]. */
async function socketPair(): Promise<[net.Socket, net.Socket, () => void]> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  const [theirs] = await accepted;
  await once(client, 'connect');
  return [theirs, client, () => server.close()];
}

function tunnelRequest(method: string, authority: string, path: string, slot: TunnelSlot): ProxyRequest {
  const headers = new HeaderList(method === 'CONNECT' ? [] : ['sec-websocket-version', '13', 'sec-websocket-key', 'dGhlIHNhbXBsZSBub25jZQ==']);
  return { method, authority, path, scheme: 'http', headers, body: null, contentLength: -1, cancel: new Cancellation(), context: newContext('in', '127.0.0.1', 'HTTP/1.1', 'id'), tunnel: slot };
}

describe('tunnel terminals use the connector', () => {
  let upstream: net.Server;
  let upstreamPort: number;
  const calls: Array<{ target: ConnectTarget; timeout: number }> = [];
  const connector: Connector = (target, options) => {
    calls.push({ target, timeout: options.timeout });
    return tcpConnector(target, options);
  };
  let snapshot: RuntimeSnapshot;

  before(async () => {
    // Answers an upgrade with 101 websocket; a CONNECT tunnel just connects.
    upstream = net.createServer((s) => {
      s.once('data', () => s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n'));
      s.on('error', () => {});
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    upstreamPort = (upstream.address() as AddressInfo).port;
    const loaded = loadConfigText(
      `
listeners:
  - name: in
    port: 0
    routes: [{ name: ws, match: { prefix: /ws }, cluster: app }]
  - name: fwd
    port: 0
    mode: forward
    forward: { connect_ports: [${upstreamPort}], connect_timeout: 1234ms }
clusters:
  - { name: app, endpoints: ["127.0.0.1:${upstreamPort}"], connect_timeout: 777ms }
`,
      'test.yaml',
      {},
    );
    snapshot = new RuntimeSnapshot(loaded, new UpstreamRegistry(connector), new SidecarMetrics());
  });

  after(async () => {
    snapshot.retire(0);
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('an upgrade connects to the picked endpoint through it, with the cluster connect_timeout', async () => {
    const lr = snapshot.listeners.get('in')!;
    const route = lr.route({ method: 'GET', host: 'a', pathname: '/ws/x', query: '', headers: new HeaderList() })!;
    const [down, client, close] = await socketPair();
    let switched: net.Socket | undefined;
    const res = await upgradeService(route, snapshot.clusters.get('app')!, connector)(
      tunnelRequest('GET', 'a', '/ws/x', { downstream: down, asked: 'websocket', http10: false, onSwitched: (up) => (switched = up), onRelayed: () => assert.fail('relayed') }),
    );
    assert.equal(res.status, 101);
    assert.deepEqual(calls.at(-1), { target: { address: `127.0.0.1:${upstreamPort}`, host: '127.0.0.1', port: upstreamPort }, timeout: 777 });
    assert.ok(switched);
    assert.equal(switched.remotePort, upstreamPort);
    switched.destroy();
    down.destroy();
    client.destroy();
    close();
  });

  it('CONNECT connects through it with forward.connect_timeout', async () => {
    const lr = snapshot.listeners.get('fwd')!;
    const [down, client, close] = await socketPair();
    let switched: net.Socket | undefined;
    const res = await connectService(lr, connector)(
      tunnelRequest('CONNECT', `127.0.0.1:${upstreamPort}`, '', { downstream: down, asked: '', http10: false, onSwitched: (up) => (switched = up), onRelayed: () => assert.fail('relayed') }),
    );
    assert.equal(res.status, 200);
    assert.deepEqual(calls.at(-1), { target: { address: `127.0.0.1:${upstreamPort}`, host: '127.0.0.1', port: upstreamPort }, timeout: 1234 });
    assert.equal(switched?.remotePort, upstreamPort);
    switched?.destroy();
    down.destroy();
    client.destroy();
    close();
  });
});
