// Active health checks against real upstreams: a failing /healthz takes an endpoint out of the balancer and a
// recovered one brings it back; probes time out; panic routing when too few endpoints are healthy; metrics.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { clusters, type ClusterState, metricsText } from '../helpers/admin.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

async function cluster(adminPort: number, name: string): Promise<ClusterState> {
  const c = (await clusters(adminPort)).find((x) => x.name === name);
  assert.ok(c, `/clusters lists ${name}`);
  return c;
}

async function health(adminPort: number, name: string, address: string): Promise<string> {
  return (await cluster(adminPort, name)).endpoints.find((e) => e.address === address)!.health;
}

async function eventually(cond: () => Promise<boolean>, what: string, timeoutMs = 4000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** An upstream whose /healthz answers `healthz()` (a status, or 'hang'); other paths answer 200 with `name`. */
function app(name: string, healthz: () => number | 'hang'): Promise<TestUpstream> {
  return startUpstream((req, res) => {
    if (req.url === '/healthz') {
      const s = healthz();
      if (s !== 'hang') reply(res, s, 'hz\n');
      return;
    }
    reply(res, 200, `${name}\n`);
  });
}

const traffic = (u: TestUpstream): number => u.requests.filter((r) => r.url !== '/healthz').length;

describe('active health checks', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let aStatus = 200;
  let a: TestUpstream; // /healthz answers aStatus
  let b: TestUpstream;
  let p1: TestUpstream; // both unhealthy: panic
  let p2: TestUpstream;
  let n1: TestUpstream; // both unhealthy, panic disabled
  let n2: TestUpstream;
  let hang: TestUpstream; // /healthz never answers
  let c: TestUpstream;

  before(async () => {
    a = await app('a', () => aStatus);
    b = await app('b', () => 200);
    p1 = await app('p1', () => 500);
    p2 = await app('p2', () => 500);
    n1 = await app('n1', () => 503);
    n2 = await app('n2', () => 503);
    hang = await app('hang', () => 'hang');
    c = await app('c', () => 204);
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { match: { prefix: /hc }, cluster: hc }
      - { match: { prefix: /panic }, cluster: panicky }
      - { match: { prefix: /nopanic }, cluster: nopanic }
      - { match: { prefix: /slow }, cluster: slow }
clusters:
  - name: hc
    endpoints: ["${a.address}", "${b.address}"]
    health_check: { path: /healthz, interval: 40ms, interval_jitter: 10, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2, expected_statuses: [200], host: probe.local }
  - name: panicky
    endpoints: ["${p1.address}", "${p2.address}"]
    panic_threshold: 50
    health_check: { interval: 40ms, unhealthy_threshold: 1 }
  - name: nopanic
    endpoints: ["${n1.address}", "${n2.address}"]
    panic_threshold: 0
    health_check: { interval: 40ms, unhealthy_threshold: 1 }
  - name: slow
    endpoints: ["${hang.address}", "${c.address}"]
    health_check: { interval: 40ms, timeout: 100ms, unhealthy_threshold: 1, expected_statuses: ["200-299"] }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    for (const u of [a, b, p1, p2, n1, n2, hang, c]) await u.close();
  });

  it('probes become healthy, carry the configured Host header, and are counted', async () => {
    await eventually(async () => (await health(sidecar.adminPort, 'hc', a.address)) === 'healthy', 'a healthy');
    const probe = a.requests.find((r) => r.url === '/healthz');
    assert.ok(probe);
    assert.equal(probe.method, 'GET');
    assert.equal(probe.headers.host, 'probe.local');
    const m = await metricsText(sidecar.adminPort);
    assert.match(m, /sidecar_health_checks_total\{cluster="hc",result="success"\} [1-9]/);
    assert.match(m, new RegExp(`sidecar_endpoint_healthy\\{cluster="hc",endpoint="${a.address}"\\} 1\\b`));
  });

  it('a failing /healthz takes the endpoint out of the balancer; recovery brings it back', async () => {
    aStatus = 503;
    await eventually(async () => (await health(sidecar.adminPort, 'hc', a.address)) === 'unhealthy', 'a unhealthy');
    const state = await cluster(sidecar.adminPort, 'hc');
    assert.equal(state.panic, false, 'one of two healthy is not below 50%');
    assert.equal(state.endpoints.find((e) => e.address === a.address)!.routable, false);
    assert.equal(state.endpoints.find((e) => e.address === a.address)!.failed_active_check, true);
    const m = await metricsText(sidecar.adminPort);
    assert.match(m, /sidecar_health_checks_total\{cluster="hc",result="failure"\} [1-9]/);
    assert.match(m, new RegExp(`sidecar_endpoint_healthy\\{cluster="hc",endpoint="${a.address}"\\} 0\\b`));

    const seen = traffic(a);
    for (let k = 0; k < 8; k++) {
      const res = await httpRequest(port, { path: `/hc/${k}` });
      assert.equal(res.status, 200);
      assert.equal(res.body, 'b\n');
    }
    assert.equal(traffic(a), seen, 'no request reached the unhealthy endpoint');

    aStatus = 200;
    await eventually(async () => (await health(sidecar.adminPort, 'hc', a.address)) === 'healthy', 'a healthy again');
    const bodies = new Set<string>();
    for (let k = 0; k < 6; k++) bodies.add((await httpRequest(port, { path: `/hc/back/${k}` })).body);
    assert.ok(bodies.has('a\n'), 'the endpoint is picked again');
    assert.match(await metricsText(sidecar.adminPort), new RegExp(`sidecar_endpoint_healthy\\{cluster="hc",endpoint="${a.address}"\\} 1\\b`));
  });

  it('panic: with both endpoints unhealthy and panic_threshold 50, traffic still flows to both', async () => {
    await eventually(async () => {
      const s = await cluster(sidecar.adminPort, 'panicky');
      return s.endpoints.every((e) => e.health === 'unhealthy');
    }, 'both unhealthy');
    const s = await cluster(sidecar.adminPort, 'panicky');
    assert.equal(s.panic, true);
    for (let k = 0; k < 8; k++) assert.equal((await httpRequest(port, { path: `/panic/${k}` })).status, 200);
    assert.ok(traffic(p1) >= 2 && traffic(p2) >= 2, `both endpoints got traffic (${traffic(p1)}, ${traffic(p2)})`);
    assert.match(await metricsText(sidecar.adminPort), /sidecar_cluster_panic_total\{cluster="panicky"\} ([89]|[1-9]\d+)\b/);
  });

  it('without panic (panic_threshold 0) an all-unhealthy cluster answers 503 UH', async () => {
    await eventually(async () => (await cluster(sidecar.adminPort, 'nopanic')).endpoints.every((e) => e.health === 'unhealthy'), 'both unhealthy');
    const res = await httpRequest(port, { path: '/nopanic/x' });
    assert.equal(res.status, 503);
    assert.equal(res.headers['x-sidecar-flag'], 'UH');
    assert.equal(traffic(n1) + traffic(n2), 0);
  });

  it('a probe that times out fails; an expected status range passes', async () => {
    await eventually(async () => (await health(sidecar.adminPort, 'slow', hang.address)) === 'unhealthy', 'hanging endpoint unhealthy');
    assert.equal(await health(sidecar.adminPort, 'slow', c.address), 'healthy');
    for (let k = 0; k < 4; k++) assert.equal((await httpRequest(port, { path: `/slow/${k}` })).body, 'c\n');
  });

  it('probes stop when the snapshot is released (cluster removed by a reload)', async () => {
    sidecar.writeConfig(`
listeners:
  - name: in
    port: ${port}
    routes:
      - { match: { prefix: / }, cluster: plain }
clusters:
  - { name: plain, endpoints: ["${b.address}"] }
`);
    sidecar.proc.kill('SIGHUP');
    await eventually(async () => (await cluster(sidecar.adminPort, 'plain').then(() => true, () => false)), 'reload');
    await sleep(150);
    const probes = a.requests.filter((r) => r.url === '/healthz').length;
    await sleep(250);
    assert.equal(a.requests.filter((r) => r.url === '/healthz').length, probes, 'no more probes after release');
  });
});
