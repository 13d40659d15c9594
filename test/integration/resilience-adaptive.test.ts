// Adaptive concurrency against a real slow upstream: a burst over the limit is shed with 503 LS, the upstream never
// sees more requests in flight than the limit, and the limit is exported as a metric.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, type HttpResult } from '../helpers/strict-net.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('adaptive concurrency', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let slow: TestUpstream;
  let inflight = 0;
  let peak = 0;

  before(async () => {
    slow = await startUpstream((_req: http.IncomingMessage, res: http.ServerResponse) => {
      inflight++;
      peak = Math.max(peak, inflight);
      setTimeout(() => {
        inflight--;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 3 });
        res.end('ok\n');
      }, 200);
    });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: /limited }
        name: limited
        cluster: slow
        adaptive_concurrency: { algorithm: aimd, min_limit: 1, max_limit: 4, initial_limit: 4, latency_threshold: 2s }
      - match: { prefix: /free }
        name: free
        cluster: slow
clusters:
  - { name: slow, endpoints: ["${slow.address}"] }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    await slow.close();
  });

  it('a burst over the limit is shed with 503 LS and the upstream in-flight count stays within the limit', async () => {
    peak = 0;
    const results: HttpResult[] = await Promise.all(Array.from({ length: 20 }, (_, i) => httpRequest(port, { path: `/limited/${i}` })));
    const ok = results.filter((r) => r.status === 200);
    const shed = results.filter((r) => r.status === 503);
    assert.equal(ok.length + shed.length, results.length, results.map((r) => r.status).join(','));
    assert.ok(shed.length >= 1, 'nothing was shed');
    assert.ok(ok.length >= 1, 'nothing got through');
    for (const r of shed) {
      assert.equal(r.headers['x-sidecar-flag'], 'LS');
      assert.match(String(r.headers['x-sidecar-error']), /adaptive concurrency limit \(\d+\) reached on route limited/);
    }
    assert.ok(peak <= 4, `upstream saw ${peak} requests in flight, limit 4`);

    const m = (await httpRequest(sidecar.adminPort, { path: '/metrics' })).body;
    assert.match(m, /sidecar_adaptive_concurrency_limit\{listener="in",route="limited"\} [1-4]\b/);
    const shedMetric = /sidecar_adaptive_concurrency_shed_total\{listener="in",route="limited"\} (\d+)/.exec(m);
    assert.ok(shedMetric, m);
    assert.equal(Number(shedMetric[1]), shed.length);
    assert.doesNotMatch(m, /sidecar_adaptive_concurrency_limit\{[^}]*route="free"/);
  });

  it('after the burst the route admits requests again', async () => {
    const res = await httpRequest(port, { path: '/limited/again' });
    assert.equal(res.status, 200);
  });

  it('a route without adaptive_concurrency is never shed', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => httpRequest(port, { path: `/free/${i}` })));
    for (const r of results) assert.equal(r.status, 200);
  });
});
