// The h2c upstream through the sidecar: concurrent requests share one multiplexed connection, and a connect timeout is
// the same UF 504 "not sent" failure as over HTTP/1.1, so a POST may be retried on another endpoint.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor, httpRequest, startBlackhole, type Blackhole } from '../helpers/strict-net.js';

const CONCURRENT = 64;

interface CountingH2Upstream {
  readonly address: string;
  /** TCP connections accepted. */
  readonly connections: () => number;
  /** Most streams open at once. */
  readonly peakStreams: () => number;
  close(): Promise<void>;
}

/**
 * An h2c upstream that counts TCP connections and holds every stream until `hold` streams are open (or 2 s pass),
 * so the requests are truly concurrent at the upstream.
 */
async function startHoldingH2(hold: number): Promise<CountingH2Upstream> {
  const server = http2.createServer();
  let connections = 0;
  let open = 0;
  let peak = 0;
  let waiting: Array<() => void> = [];
  const releaseAll = (): void => {
    for (const answer of waiting) answer();
    waiting = [];
  };
  server.on('connection', () => connections++);
  server.on('stream', (stream, headers) => {
    open++;
    peak = Math.max(peak, open);
    stream.on('close', () => open--);
    stream.on('error', () => {});
    const answer = (): void => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(`${headers[':method']} ${headers[':path']}`);
    };
    if (hold <= 1) return answer();
    waiting.push(answer);
    if (waiting.length >= hold) releaseAll();
    else setTimeout(releaseAll, 2000).unref();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    connections: () => connections,
    peakStreams: () => peak,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('h2c upstream through the sidecar', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let holding: CountingH2Upstream;
  let plain: CountingH2Upstream;
  let blackhole: Blackhole;

  before(async () => {
    holding = await startHoldingH2(CONCURRENT);
    plain = await startHoldingH2(1);
    blackhole = await startBlackhole();
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { match: { prefix: /many }, cluster: holding }
      - { match: { prefix: /connect-timeout }, cluster: h2_blackhole }
      - match: { prefix: /retry-post }
        cluster: h2_pair
        retry: { retry_on: [connect-failure], max_retries: 1, backoff: { base_interval: 1ms, max_interval: 2ms } }
clusters:
  - { name: holding, protocol: h2c, endpoints: ["${holding.address}"] }
  - { name: h2_blackhole, protocol: h2c, endpoints: ["${blackhole.address}"], connect_timeout: 400ms }
  - name: h2_pair
    protocol: h2c
    connect_timeout: 300ms
    lb: { policy: round_robin }
    endpoints: ["${blackhole.address}", "${plain.address}"]
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar?.stop();
    await holding?.close();
    await plain?.close();
    await blackhole?.close();
  });

  it(`${CONCURRENT} concurrent requests share one upstream TCP connection`, { timeout: 30_000 }, async () => {
    const agent = new http.Agent({ keepAlive: false, maxSockets: CONCURRENT });
    try {
      const results = await Promise.all(
        Array.from({ length: CONCURRENT }, (_, i) => httpRequest(port, { path: `/many/${i}`, headers: { host: 'app.local' }, agent })),
      );
      results.forEach((r, i) => {
        assert.equal(r.status, 200, r.body);
        assert.equal(r.body, `GET /many/${i}`);
      });
    } finally {
      agent.destroy();
    }
    assert.equal(holding.peakStreams(), CONCURRENT, 'the upstream held all requests open at once');
    assert.equal(holding.connections(), 1, `TCP connections at the h2c upstream: ${holding.connections()}`);
  });

  it('a connect timeout is 504 UF, not sent, within connect_timeout', { timeout: 30_000 }, async () => {
    const t0 = performance.now();
    const res = await httpRequest(port, { path: '/connect-timeout/a', headers: { host: 'app.local' } });
    const ms = performance.now() - t0;
    assert.equal(res.status, 504, res.body);
    assert.equal(res.headers['x-sidecar-flag'], 'UF');
    assert.match(String(res.headers['x-sidecar-error']), /connect timeout/);
    assert.ok(String(res.headers['x-sidecar-error']).includes(blackhole.address));
    assert.ok(ms >= 350 && ms < 3000, `answered after ${ms} ms (connect_timeout 400ms)`);
    const log = await accessLogFor(sidecar, '/connect-timeout/a');
    assert.equal(log.status, 504);
    assert.equal(log.response_flag, 'UF');
    assert.equal(log.upstream_outcome, 'not-sent');
    assert.equal(log.upstream_cause, 'connect-timeout');
  });

  it('a POST whose connect timed out is retried on the other endpoint (nothing was sent)', { timeout: 30_000 }, async () => {
    // Round robin over [blackhole, plain]: two POSTs start on each endpoint once between them.
    for (const n of [1, 2]) {
      const res = await httpRequest(port, { method: 'POST', path: `/retry-post/${n}`, headers: { host: 'app.local', 'content-type': 'text/plain' }, body: 'payload' });
      assert.equal(res.status, 200, `POST ${n}: ${res.status} ${res.headers['x-sidecar-flag']} ${res.headers['x-sidecar-error']}`);
      assert.equal(res.body, `POST /retry-post/${n}`);
    }
    const attempts = [await accessLogFor(sidecar, '/retry-post/1'), await accessLogFor(sidecar, '/retry-post/2')].map((l) => l.attempts);
    assert.deepEqual([...attempts].sort(), [1, 2], `attempts per POST: ${attempts.join(', ')}`);
  });
});
