// Hedging against real upstreams: one endpoint slow (500 ms), one fast. A GET stuck on the slow one is hedged to
// the fast one after 50 ms and the slow attempt is cancelled; a POST is never hedged.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor, httpRequest, waitUntil } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('hedging', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let slow: TestUpstream;
  let fast: TestUpstream;
  let slowCancelled = 0;

  before(async () => {
    slow = await startUpstream((_req, res) => {
      const t = setTimeout(() => reply(res, 200, 'slow\n'), 500);
      res.on('close', () => {
        if (!res.writableFinished) {
          clearTimeout(t);
          slowCancelled++;
        }
      });
    });
    fast = await startUpstream((_req, res) => reply(res, 200, 'fast\n'));
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: /hedged }
        cluster: two
        hedge: { after: 50ms }
      - match: { prefix: /p95 }
        cluster: two_p95
        hedge: { after: p95 }
        retry: { retry_on: [5xx], max_retries: 1 }
clusters:
  - { name: two, endpoints: ["${slow.address}", "${fast.address}"] }
  - { name: two_p95, endpoints: ["${slow.address}", "${fast.address}"] }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    await slow.close();
    await fast.close();
  });

  it('a GET on the slow endpoint is hedged to the fast one and the slow attempt is cancelled', async () => {
    const slowBefore = slow.requests.length;
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now();
      const res = await httpRequest(port, { path: `/hedged/${i}` });
      const ms = performance.now() - t0;
      assert.equal(res.status, 200, `${res.status} ${String(res.headers['x-sidecar-error'])}`);
      assert.equal(res.body, 'fast\n');
      assert.ok(ms < 350, `took ${ms} ms`);
    }
    const slowSeen = slow.requests.length - slowBefore;
    assert.ok(slowSeen >= 1, 'round robin never picked the slow endpoint');
    assert.ok(await waitUntil(() => slowCancelled >= slowSeen, 2000), `slow endpoint saw ${slowSeen} requests, ${slowCancelled} cancelled`);
    const logs = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => accessLogFor(sidecar, `/hedged/${i}`)));
    assert.equal(logs.filter((l) => l.attempts === 2).length, slowSeen, 'each slow first attempt cost one hedge');

    const m = (await httpRequest(sidecar.adminPort, { path: '/metrics' })).body;
    const count = (outcome: string): number =>
      Number(new RegExp(`sidecar_hedges_total\\{cluster="two",outcome="${outcome}"\\} (\\d+)`).exec(m)?.[1] ?? 'NaN');
    assert.equal(count('sent'), slowSeen, m);
    assert.equal(count('won'), slowSeen);
    assert.equal(count('lost'), 0);
  });

  it('a POST is never hedged', async () => {
    const slowBefore = slow.requests.length;
    const fastBefore = fast.requests.length;
    const times: number[] = [];
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      const res = await httpRequest(port, { method: 'POST', path: `/hedged/post-${i}`, body: 'payload' });
      times.push(performance.now() - t0);
      assert.equal(res.status, 200);
    }
    assert.equal(slow.requests.length - slowBefore + (fast.requests.length - fastBefore), 2, 'a POST was sent twice');
    assert.equal(slow.requests.length - slowBefore, 1);
    assert.ok(times.some((t) => t >= 450), `POST times ${times.join(', ')}: the slow one was not waited for`);
  });

  it('after: p95 hedges with the warm-up fallback, inside the retry layer', async () => {
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      const res = await httpRequest(port, { path: `/p95/${i}` });
      const ms = performance.now() - t0;
      assert.equal(res.status, 200);
      assert.ok(ms < 350, `took ${ms} ms`);
    }
    const m = (await httpRequest(sidecar.adminPort, { path: '/metrics' })).body;
    assert.match(m, /sidecar_hedges_total\{cluster="two_p95",outcome="won"\} [1-9]/);
  });
});
