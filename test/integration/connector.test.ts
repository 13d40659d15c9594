// The connector seam: the TCP connector's typed connect timeout, and every client of an endpoint (HTTP/1.1 pool, h2c
// sessions, health checks) connecting through the connector it is given.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HealthChecker } from '../../src/cluster/health-checker.js';
import { isWholeBody } from '../../src/core/body.js';
import { Cancellation } from '../../src/core/cancel.js';
import { ProxyError } from '../../src/core/errors.js';
import { HeaderList } from '../../src/core/headers.js';
import type { ProxyRequest } from '../../src/core/service.js';
import { newContext } from '../../src/http-server/exchange.js';
import { connectTarget, tcpConnector, withConnectTimeout, type ConnectTarget, type Connector } from '../../src/upstream/connector.js';
import { UpstreamRegistry } from '../../src/upstream/registry.js';
import { testUpstreamOptions } from '../../src/upstream/testing.js';
import { startBlackhole, type Blackhole } from '../helpers/strict-net.js';
import { freePort } from '../helpers/upstream.js';

/** Resolves with 'connect' or the error the socket was destroyed with. */
function outcome(socket: net.Socket): Promise<'connect' | Error> {
  return new Promise((resolve) => {
    socket.once('connect', () => resolve('connect'));
    socket.once('error', (err) => resolve(err));
  });
}

/** Wraps a connector, recording every target it was asked for. */
function recording(inner: Connector): { connector: Connector; calls: Array<{ target: ConnectTarget; timeout: number }> } {
  const calls: Array<{ target: ConnectTarget; timeout: number }> = [];
  return {
    calls,
    connector: (target, options) => {
      calls.push({ target, timeout: options.timeout });
      return inner(target, options);
    },
  };
}

function request(path: string): ProxyRequest {
  return {
    method: 'GET',
    authority: 'app.local',
    path,
    scheme: 'http',
    headers: new HeaderList([]),
    body: null,
    contentLength: -1,
    cancel: new Cancellation(),
    context: { ...newContext('l', '127.0.0.1', 'HTTP/1.1', 'c'), route: 'r', cluster: 'c' },
  };
}

describe('connector seam', () => {
  let h1: http.Server;
  let h1Address: string;
  let h2: http2.Http2Server;
  let h2Address: string;
  let blackhole: Blackhole;
  const sockets = new Set<net.Socket>();

  before(async () => {
    h1 = http.createServer((req, res) => res.end(req.url === '/healthz' ? 'ok' : 'app'));
    await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve));
    h1Address = `127.0.0.1:${(h1.address() as AddressInfo).port}`;
    h2 = http2.createServer((_req, res) => res.end('h2'));
    await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
    h2Address = `127.0.0.1:${(h2.address() as AddressInfo).port}`;
    blackhole = await startBlackhole();
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    h1.closeAllConnections();
    await new Promise<void>((resolve) => h1.close(() => resolve()));
    await new Promise<void>((resolve) => h2.close(() => resolve()));
    await blackhole.close();
  });

  it('tcpConnector connects, passes a refused connect on as the OS error, and turns a hanging one into UF 504 not-sent', { timeout: 10_000 }, async () => {
    const ok = tcpConnector(connectTarget(h1Address), { timeout: 1000 });
    sockets.add(ok);
    assert.equal(await outcome(ok), 'connect');
    ok.destroy();

    const refused = await outcome(tcpConnector(connectTarget(`127.0.0.1:${await freePort()}`), { timeout: 1000 }));
    assert.ok(refused instanceof Error && (refused as Error & { code?: string }).code === 'ECONNREFUSED', String(refused));

    const t0 = performance.now();
    const hung = await outcome(tcpConnector(connectTarget(blackhole.address), { timeout: 200 }));
    const ms = performance.now() - t0;
    assert.ok(hung instanceof ProxyError, String(hung));
    assert.equal(hung.flag, 'UF');
    assert.equal(hung.status, 504);
    assert.equal(hung.outcome, 'not-sent');
    assert.equal(hung.code, 'connect-timeout');
    assert.equal(hung.endpoint, blackhole.address);
    assert.ok(ms >= 180 && ms < 2000, `gave up after ${ms} ms (timeout 200ms)`);
  });

  it('withConnectTimeout leaves a connected socket alone', { timeout: 10_000 }, async () => {
    const s = withConnectTimeout(net.connect({ host: '127.0.0.1', port: Number(h1Address.split(':')[1]) }), connectTarget(h1Address), 100);
    sockets.add(s);
    assert.equal(await outcome(s), 'connect');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(s.destroyed, false, 'the timer was cleared on connect');
    s.destroy();
  });

  it('the registry hands its connector to the HTTP/1.1 and h2c pools it makes', { timeout: 10_000 }, async () => {
    const rec = recording(tcpConnector);
    const registry = new UpstreamRegistry(rec.connector);
    try {
      for (const [protocol, address, want] of [['http1', h1Address, 'app'], ['h2c', h2Address, 'h2']] as const) {
        const lease = registry.acquire(protocol, testUpstreamOptions(address, { connectTimeout: 1234, keepAliveTimeout: 10_000, streamIdleTimeout: 10_000 }), 'c');
        const req = request('/');
        const res = await lease.upstream.request(req, req.cancel);
        const body = res.body;
        let text = '';
        if (body !== null && isWholeBody(body)) text = body.toString();
        else if (body !== null) for await (const c of body) text += String(c);
        assert.equal(text, want);
        lease.release();
      }
    } finally {
      await registry.closeAll();
    }
    assert.deepEqual(rec.calls.map((c) => [c.target.address, c.timeout]), [[h1Address, 1234], [h2Address, 1234]]);
  });

  it('the health checker probes through its connector, bounded by the probe timeout', { timeout: 10_000 }, async () => {
    const settings = { path: '/healthz', intervalMs: 60_000, jitterRatio: 0, timeoutMs: 300, expectedStatuses: ['200-399'] };
    const probe = (addresses: string[], connector: Connector): Promise<boolean[]> =>
      new Promise((resolve) => {
        const results: boolean[] = [];
        const checker = new HealthChecker(addresses, settings, (_i, ok) => {
          results.push(ok);
          if (results.length === addresses.length) {
            checker.stop();
            resolve(results);
          }
        }, connector);
        checker.start();
      });
    const rec = recording(tcpConnector);
    assert.deepEqual(await probe([h1Address], rec.connector), [true]);
    assert.deepEqual(rec.calls.map((c) => [c.target.address, c.timeout]), [[h1Address, 300]]);

    // A connector whose connects hang (every connect goes to the full accept queue): the probe fails in time.
    const hanging: Connector = (target, o) => withConnectTimeout(net.connect({ host: '127.0.0.1', port: blackhole.port }), target, o.timeout);
    const t0 = performance.now();
    assert.deepEqual(await probe([h1Address], hanging), [false]);
    assert.ok(performance.now() - t0 < 2000);
  });
});
