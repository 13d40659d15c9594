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
