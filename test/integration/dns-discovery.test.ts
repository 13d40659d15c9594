// A sidecar whose cluster follows DNS (SRV, then A) from a real UDP DNS server on 127.0.0.1: routes to what the
// records name, follows a change without a reload, and keeps serving the last good set through a DNS outage.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { clusters, metricsText } from '../helpers/admin.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

async function eventually(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(30);
  }
}

describe('dns discovery in a running sidecar', () => {
  let dns: TestDnsServer;
  let u1: TestUpstream;
  let u2: TestUpstream;
  let sidecar: RunningSidecar;

  before(async () => {
    dns = await startDnsServer();
    u1 = await startUpstream((_q, res) => reply(res, 200, 'u1\n'));
    u2 = await startUpstream((_q, res) => reply(res, 200, 'u2\n'));
    dns.zone.set('_http._tcp.app.test', { SRV: [{ priority: 1, weight: 1, port: u1.port, target: 'one.app.test', ttl: 0 }] });
    dns.zone.set('one.app.test', { A: [{ address: '127.0.0.1', ttl: 0 }] });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: / }
        cluster: app
clusters:
  - name: app
    discovery:
      dns: { name: _http._tcp.app.test, type: SRV, servers: ["${dns.address}"], ttl_floor: 100ms, ttl_ceiling: 1s, timeout: 200ms }
`);
  });

  after(async () => {
    await sidecar?.stop();
    await u1?.close();
    await u2?.close();
    await dns?.close();
  });

  it('routes to the SRV targets, follows a change, and keeps the last good set while DNS fails', async () => {
    const port = sidecar.ports.in!;
    await eventually(async () => (await httpRequest(port, { path: '/' })).body === 'u1\n', 'the first answer');
    const c = (await clusters(sidecar.adminPort)).find((x) => x.name === 'app')!;
    assert.equal((c.endpoints[0] as unknown as { source: string }).source, 'dns:SRV _http._tcp.app.test');
    dns.zone.set('_http._tcp.app.test', { SRV: [{ priority: 1, weight: 1, port: u2.port, target: 'one.app.test', ttl: 0 }] });
    await eventually(async () => (await httpRequest(port, { path: '/' })).body === 'u2\n', 'the changed record');
    dns.mode = 'servfail';
    await eventually(async () => /sidecar_discovery_source_errors_total\{cluster="app",source="dns:SRV _http._tcp.app.test"\} [2-9]/.test(await metricsText(sidecar.adminPort)), 'failed lookups to be counted');
    for (let i = 0; i < 5; i++) assert.equal((await httpRequest(port, { path: '/' })).body, 'u2\n', 'the last good set serves');
    const shown = JSON.parse((await httpRequest(sidecar.adminPort, { path: '/clusters' })).body) as { clusters: { discovery: { last_error: string } }[] };
    assert.match(shown.clusters[0]!.discovery.last_error, /ESERVFAIL/);
    dns.mode = 'ok';
  });
});

describe('dns SRV priority failover (RFC 2782) in a running sidecar', () => {
  let dns: TestDnsServer;
  const up = { best1: true, best2: true };
  let best1: TestUpstream;
  let best2: TestUpstream;
  let fallback: TestUpstream;
  let sidecar: RunningSidecar;
  // The best-priority apps answer their health check 503 while "down"; traffic is what shows where picks go.
  const app = (name: 'best1' | 'best2' | 'fallback') => (q: { url?: string | undefined }, res: Parameters<typeof reply>[0]) =>
    q.url === '/healthz' ? reply(res, name === 'fallback' || up[name] ? 200 : 503, 'ok\n') : reply(res, 200, `${name}\n`);

  before(async () => {
    dns = await startDnsServer();
    best1 = await startUpstream(app('best1'));
    best2 = await startUpstream(app('best2'));
    fallback = await startUpstream(app('fallback'));
    dns.zone.set('_http._tcp.prio.test', {
      SRV: [
        { priority: 10, weight: 1, port: best1.port, target: 'best.prio.test', ttl: 0 },
        { priority: 10, weight: 1, port: best2.port, target: 'best.prio.test', ttl: 0 },
        { priority: 20, weight: 1, port: fallback.port, target: 'fallback.prio.test', ttl: 0 },
      ],
    });
    dns.zone.set('best.prio.test', { A: [{ address: '127.0.0.1', ttl: 0 }] });
    dns.zone.set('fallback.prio.test', { A: [{ address: '127.0.0.1', ttl: 0 }] });
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: / }
        cluster: app
clusters:
  - name: app
    panic_threshold: 0
    health_check: { path: /healthz, interval: 50ms, interval_jitter: 0, timeout: 500ms, healthy_threshold: 1, unhealthy_threshold: 1 }
    discovery:
      dns: { name: _http._tcp.prio.test, type: SRV, servers: ["${dns.address}"], ttl_floor: 200ms, ttl_ceiling: 1s, timeout: 200ms }
`);
  });

  after(async () => {
    await sidecar?.stop();
    await Promise.all([best1?.close(), best2?.close(), fallback?.close()]);
    await dns?.close();
  });

  /** Which apps answer n requests. */
  const served = async (n: number): Promise<Record<string, number>> => {
    const by: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const r = await httpRequest(sidecar.ports.in!, { path: '/' });
      assert.equal(r.status, 200, r.body);
      by[r.body.trim()] = (by[r.body.trim()] ?? 0) + 1;
    }
    return by;
  };
  const activePriority = async (): Promise<number | null> =>
    (JSON.parse((await httpRequest(sidecar.adminPort, { path: '/clusters' })).body) as { clusters: { discovery: { active_priority: number | null } }[] }).clusters[0]!.discovery.active_priority;

  it('the best priority takes the traffic; when all of it fails its health check the next priority does; back up, it returns', async () => {
    await eventually(async () => (await activePriority()) === 10, 'every SRV priority discovered and the best one chosen');
    const shown = JSON.parse((await httpRequest(sidecar.adminPort, { path: '/clusters' })).body) as { clusters: { endpoints: { address: string; priority: number }[] }[] };
    assert.deepEqual(shown.clusters[0]!.endpoints.map((e) => e.priority).sort(), [10, 10, 20]);
    const normal = await served(20);
    assert.deepEqual(Object.keys(normal).sort(), ['best1', 'best2'], JSON.stringify(normal));
    up.best1 = false;
    await eventually(async () => JSON.stringify(await served(6)) === '{"best2":6}', 'best1 out: the rest of its level serves');
    assert.equal(await activePriority(), 10);
    up.best2 = false;
    await eventually(async () => (await activePriority()) === 20, 'the next priority to take over');
    assert.deepEqual(await served(10), { fallback: 10 });
    up.best1 = true;
    up.best2 = true;
    await eventually(async () => (await activePriority()) === 10, 'the best priority back');
    const back = await served(20);
    assert.deepEqual(Object.keys(back).sort(), ['best1', 'best2'], JSON.stringify(back));
  });
});
