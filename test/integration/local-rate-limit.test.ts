// local_rate_limit over real sockets and real time: burst then refill per client, keys from a header, 429 with
// Retry-After and RateLimit headers, a per-key in-flight limit against a slow upstream, per-route overrides, metrics.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { metricsText } from '../helpers/admin.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('local_rate_limit', () => {
  let sidecar: RunningSidecar;
  let app: TestUpstream;
  const releases: Array<() => void> = [];

  before(async () => {
    app = await startUpstream((req, res) => {
      if (req.url?.startsWith('/slow')) releases.push(() => reply(res, 200, 'slow done'));
      else reply(res, 200, 'ok');
    });
    sidecar = await startSidecar(`
listeners:
  - name: ip
    port: 0
    filters:
      - type: local_rate_limit
        config: { burst: 3, tokens_per_fill: 5, fill_interval: 1s }
    routes:
      - match: { prefix: /free }
        cluster: app
        filter_overrides: { local_rate_limit: { disabled: true } }
      - match: { prefix: / }
        cluster: app
  - name: hdr
    port: 0
    filters:
      - type: local_rate_limit
        config: { key: { source: header, name: x-tenant }, burst: 2, tokens_per_fill: 1, fill_interval: 1m }
    routes:
      - { match: { prefix: / }, cluster: app }
  - name: conc
    port: 0
    filters:
      - type: local_rate_limit
        config: { burst: 1000, tokens_per_fill: 1000, max_in_flight: 2 }
    routes:
      - { match: { prefix: / }, cluster: app }
clusters:
  - { name: app, endpoints: ["${app.address}"] }
`);
  });

  after(async () => {
    for (const r of releases) r();
    await sidecar.stop();
    await app.close();
  });

  it('a client gets its burst, then 429 RL with Retry-After and RateLimit headers, then the refill', async () => {
    const port = sidecar.ports.ip!;
    const first = await httpRequest(port, { path: '/a' });
    assert.equal(first.status, 200);
    assert.equal(first.headers['ratelimit-policy'], '"local";q=3;w=1');
    assert.match(String(first.headers.ratelimit), /^"local";r=2;t=\d+$/);
    const rest = [];
    for (let i = 0; i < 4; i++) rest.push(await httpRequest(port, { path: '/a' }));
    const statuses = rest.map((r) => r.status);
    assert.deepEqual(statuses.slice(0, 2), [200, 200]);
    const limited = rest.find((r) => r.status === 429);
    assert.ok(limited, `statuses ${statuses}`);
    assert.equal(limited.headers['x-sidecar-flag'], 'RL');
    assert.equal(limited.headers['retry-after'], '1');
    assert.equal(limited.headers['ratelimit-policy'], '"local";q=3;w=1');
    assert.match(String(limited.headers.ratelimit), /^"local";r=0;t=1$/);
    assert.equal((await httpRequest(port, { path: '/free' })).status, 200, 'the route override drops the filter');
    await sleep(450); // 5 tokens per second: two more by now
    const after = [await httpRequest(port, { path: '/a' }), await httpRequest(port, { path: '/a' })];
    assert.deepEqual(after.map((r) => r.status), [200, 200]);
  });

  it('measured over real time: about burst + rate x seconds are allowed', async () => {
    const port = sidecar.ports.ip!;
    await sleep(700); // refill to full
    const start = Date.now();
    let ok = 0;
    while (Date.now() - start < 1500) {
      if ((await httpRequest(port, { path: '/m' })).status === 200) ok++;
      await sleep(20);
    }
    const secs = (Date.now() - start) / 1000;
    assert.ok(ok >= 3 + Math.floor(5 * (secs - 0.3)) && ok <= 3 + Math.ceil(5 * secs) + 1, `allowed ${ok} in ${secs}s`);
  });

  it('a header key: each tenant has its own bucket', async () => {
    const port = sidecar.ports.hdr!;
    const go = (t: string) => httpRequest(port, { path: '/', headers: { 'x-tenant': t } }).then((r) => r.status);
    assert.deepEqual([await go('a'), await go('a'), await go('a')], [200, 200, 429]);
    assert.deepEqual([await go('b'), await go('b'), await go('b')], [200, 200, 429]);
  });

  it('max_in_flight: the third concurrent request of a client is refused at once, and slots come back', async () => {
    const port = sidecar.ports.conc!;
    const slow = [httpRequest(port, { path: '/slow1' }), httpRequest(port, { path: '/slow2' })];
    while (releases.length < 2) await sleep(10);
    const third = await httpRequest(port, { path: '/fast' });
    assert.equal(third.status, 429);
    assert.match(String(third.headers['x-sidecar-error']), /max_in_flight 2/);
    for (const r of releases.splice(0)) r();
    assert.deepEqual((await Promise.all(slow)).map((r) => r.status), [200, 200]);
    assert.equal((await httpRequest(port, { path: '/fast' })).status, 200);
  });

  it('decisions are counted', async () => {
    const text = await metricsText(sidecar.adminPort);
    assert.match(text, /sidecar_rate_limit_decisions_total\{listener="ip",route="",filter="local_rate_limit",result="limited"\} [1-9]/);
    assert.match(text, /sidecar_rate_limit_decisions_total\{listener="conc",route="",filter="local_rate_limit",result="over_concurrency"\} 1/);
  });
});
