// Passive outlier detection against real upstreams: consecutive 503s and connect failures eject an endpoint, traffic
// goes to the healthy one, the endpoint returns after base_ejection_time, max_ejection_percent holds, and an
// ejected single endpoint gives 503 UH.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { clusters, type EndpointState, metricsText } from '../helpers/admin.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';
import { freePort, reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

async function endpoint(adminPort: number, cluster: string, address: string): Promise<EndpointState> {
  const c = (await clusters(adminPort)).find((x) => x.name === cluster);
  const e = c?.endpoints.find((x) => x.address === address);
  assert.ok(e, `/clusters lists ${cluster} ${address}`);
  return e;
}

async function eventually(cond: () => Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('outlier detection', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let flakyBad = true;
  let bad: TestUpstream; // 503 while flakyBad
  let good: TestUpstream;
  let good2: TestUpstream;
  let both1: TestUpstream;
  let both2: TestUpstream;
  let single: TestUpstream;
  let refusedPort: number;

  before(async () => {
    refusedPort = await freePort();
    bad = await startUpstream((_req, res) => (flakyBad ? reply(res, 503, 'bad\n') : reply(res, 200, 'bad-recovered\n')));
    good = await startUpstream((_req, res) => reply(res, 200, 'good\n'));
    good2 = await startUpstream((_req, res) => reply(res, 200, 'good2\n'));
    both1 = await startUpstream((_req, res) => reply(res, 500, 'down\n'));
    both2 = await startUpstream((_req, res) => reply(res, 500, 'down\n'));
    single = await startUpstream((_req, res) => reply(res, 503, 'down\n'));
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { match: { prefix: /od }, cluster: od }
      - { match: { prefix: /refused }, cluster: refused }
      - { match: { prefix: /capped }, cluster: capped }
      - { match: { prefix: /single }, cluster: single }
      - { match: { prefix: /plain }, cluster: plain }
clusters:
  - name: od
    endpoints: ["${bad.address}", "${good.address}"]
    outlier_detection: { consecutive_5xx: 5, consecutive_gateway_failure: 5, base_ejection_time: 300ms, max_ejection_time: 1s, interval: 1s }
  - name: refused
    endpoints: ["127.0.0.1:${refusedPort}", "${good2.address}"]
    outlier_detection: { consecutive_gateway_failure: 3, base_ejection_time: 10s }
  - name: capped
    endpoints: ["${both1.address}", "${both2.address}"]
    outlier_detection: { consecutive_5xx: 2, max_ejection_percent: 10, always_eject_one: false }
  - name: single
    endpoints: ["${single.address}"]
    panic_threshold: 0
    outlier_detection: { consecutive_gateway_failure: 2, base_ejection_time: 10s }
  - name: plain
    endpoints: ["${good.address}"]
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    for (const u of [bad, good, good2, both1, both2, single]) await u.close();
  });

  it('five 503s in a row eject the endpoint; traffic goes to the healthy one; it returns after base_ejection_time', async () => {
    let i = 0;
    while (bad.requests.length < 5) {
      await httpRequest(port, { path: `/od/warm/${i++}` });
      assert.ok(i < 40, 'round robin reaches the bad endpoint');
    }
    const ejected = await endpoint(sidecar.adminPort, 'od', bad.address);
    assert.equal(ejected.ejected, true, JSON.stringify(ejected));
    assert.equal(ejected.ejections, 1);
    assert.equal(ejected.routable, false);
    assert.equal(ejected.health, 'ejected', 'one word for the endpoint: ejected');
    assert.equal(ejected.failed_active_check, false, 'no active health checks on this cluster');
    assert.ok(ejected.ejected_until !== null && Date.parse(ejected.ejected_until) > Date.now(), `ejected_until ${ejected.ejected_until}`);
    const goodState = await endpoint(sidecar.adminPort, 'od', good.address);
    assert.deepEqual([goodState.ejected, goodState.ejected_until, goodState.ejections], [false, null, 0]);

    const seen = bad.requests.length;
    for (let k = 0; k < 8; k++) {
      const res = await httpRequest(port, { path: `/od/ejected/${k}` });
      assert.equal(res.status, 200);
      assert.equal(res.body, 'good\n');
    }
    assert.equal(bad.requests.length, seen, 'no request reached the ejected endpoint');

    const m = await metricsText(sidecar.adminPort);
    assert.match(m, /sidecar_outlier_ejections_total\{cluster="od",reason="consecutive-gateway-failure"\} 1\b/);
    assert.match(m, /sidecar_outlier_ejected_endpoints\{cluster="od"\} 1\b/);

    flakyBad = false;
    await sleep(350);
    const back = await endpoint(sidecar.adminPort, 'od', bad.address);
    assert.deepEqual([back.ejected, back.ejected_until, back.health, back.routable], [false, null, 'healthy', true]);
    const bodies = new Set<string>();
    for (let k = 0; k < 6; k++) bodies.add((await httpRequest(port, { path: `/od/back/${k}` })).body);
    assert.ok(bodies.has('bad-recovered\n'), 'the endpoint is picked again');
    assert.match(await metricsText(sidecar.adminPort), /sidecar_outlier_ejected_endpoints\{cluster="od"\} 0\b/);
  });

  it('connect failures (local-origin) eject the endpoint', async () => {
    let failures = 0;
    for (let k = 0; k < 12 && failures < 3; k++) {
      const res = await httpRequest(port, { path: `/refused/${k}` });
      if (res.status !== 200) {
        assert.equal(res.headers['x-sidecar-flag'], 'UF');
        failures++;
      }
    }
    assert.equal(failures, 3);
    await eventually(async () => (await endpoint(sidecar.adminPort, 'refused', `127.0.0.1:${refusedPort}`)).ejected, 'ejection');
    for (let k = 0; k < 6; k++) assert.equal((await httpRequest(port, { path: `/refused/after/${k}` })).status, 200);
  });

  it('max_ejection_percent: without always_eject_one a 2-endpoint cluster at 10% ejects nothing', async () => {
    for (let k = 0; k < 10; k++) assert.equal((await httpRequest(port, { path: `/capped/${k}` })).status, 500);
    const c = (await clusters(sidecar.adminPort)).find((x) => x.name === 'capped')!;
    assert.deepEqual(
      c.endpoints.map((e) => e.ejected),
      [false, false],
    );
    assert.ok(both1.requests.length >= 4 && both2.requests.length >= 4, 'both kept receiving traffic');
  });

  it('an ejected sole endpoint (panic_threshold 0) gives 503 UH', async () => {
    for (let k = 0; k < 2; k++) assert.equal((await httpRequest(port, { path: `/single/${k}` })).status, 503);
    const seen = single.requests.length;
    const res = await httpRequest(port, { path: '/single/after' });
    assert.equal(res.status, 503);
    assert.equal(res.headers['x-sidecar-flag'], 'UH');
    assert.equal(single.requests.length, seen);
  });

  it('a cluster without the block shows no ejection state', async () => {
    assert.equal((await httpRequest(port, { path: '/plain/x' })).status, 200);
    const e = await endpoint(sidecar.adminPort, 'plain', good.address);
    assert.deepEqual([e.health, e.ejected, e.ejected_until, e.ejections, e.routable, e.failed_active_check], ['healthy', false, null, 0, true, false]);
  });
});
