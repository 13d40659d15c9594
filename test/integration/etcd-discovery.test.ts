// Discovery and registration through a real etcd: one sidecar registers its app (after the app is healthy) under a
// kept-alive lease; another sidecar's cluster follows the service's keys by watch. A registrant killed with SIGKILL
// vanishes when its lease expires; a drained sidecar withdraws its key at once.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { clusters, metricsText } from '../helpers/admin.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { ROOT, startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

async function eventually(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 8000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('etcd discovery and registration between two sidecars', () => {
  let etcd: TestEtcd;
  let client: Etcd3;
  let app1: TestUpstream;
  let app2: TestUpstream;
  let healthy = false;
  let server: RunningSidecar; // registers app1
  let caller: RunningSidecar; // discovers service "app"
  const key1 = (): string => `/sidecar/services/app/${app1.address}`;

  before(async () => {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: etcd.url });
    app1 = await startUpstream((req, res) => (req.url === '/healthz' ? reply(res, healthy ? 200 : 503, 'hz\n') : reply(res, 200, 'app1\n')));
    app2 = await startUpstream((_req, res) => reply(res, 200, 'app2\n'));
    server = await startSidecar(`
listeners: []
clusters: []
register:
  endpoints: ["${etcd.url}"]
  service: app
  address: "${app1.address}"
  zone: a
  ttl: 2s
  health_url: "http://${app1.address}/healthz"
`);
    caller = await startSidecar(`
listeners:
  - name: out
    port: 0
    routes:
      - match: { prefix: / }
        cluster: app
clusters:
  - name: app
    discovery:
      etcd: { endpoints: ["${etcd.url}"], service: app }
      empty_grace: 0s
`);
  });

  after(async () => {
    await caller?.stop();
    await server?.stop();
    client?.close();
    await app1?.close();
    await app2?.close();
    await etcd?.dispose();
  });

  it('registers only once the app is healthy; the other sidecar routes to it; a killed registrant expires; drain withdraws first', async () => {
    const port = caller.ports.out!;
    await sleep(1500);
    assert.equal(await client.get(key1()).string(), null, 'not registered while the app fails its health URL');
    assert.equal((await httpRequest(port, { path: '/' })).status, 503, 'no endpoint yet');
    healthy = true;
    await eventually(async () => (await client.get(key1()).string()) !== null, 'the registration');
    assert.deepEqual(JSON.parse((await client.get(key1()).string())!), { weight: 1, zone: 'a' });
    const lease = (await client.get(key1()).exec()).kvs[0]!.lease;
    assert.notEqual(lease, '0', 'the key is on a lease');
    await eventually(async () => (await httpRequest(port, { path: '/' })).body === 'app1\n', 'the caller to route to app1');
    const shown = (await clusters(caller.adminPort)).find((c) => c.name === 'app')!;
    const ep = shown.endpoints[0] as unknown as { source: string; updated_at: string; zone: string };
    assert.equal(ep.source, 'etcd:/sidecar/services/app/');
    assert.equal(ep.zone, 'a');
    assert.ok(!Number.isNaN(Date.parse(ep.updated_at)));

    // A second registrant in its own process, killed without a goodbye: its key lives only as long as its lease.
    const script = `import('${ROOT}/dist/src/discovery/register.js').then((m) => { const r = new m.Registration({ endpoints: ['${etcd.url}'], prefix: '/sidecar/services/', service: 'app', address: '${app2.address}', weight: 1, ttlMs: 2000, timeoutMs: 1000 }, { onState: (s) => { if (s === 'registered') console.log('registered'); } }); r.start(); setInterval(() => {}, 1000); });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('registered') && resolve()));
    await eventually(async () => {
      const bodies = new Set<string>();
      for (let i = 0; i < 6; i++) bodies.add((await httpRequest(port, { path: '/' })).body);
      return bodies.has('app2\n');
    }, 'the caller to route to app2 as well');
    child.kill('SIGKILL');
    const killedAt = Date.now();
    await eventually(async () => (await client.get(`/sidecar/services/app/${app2.address}`).string()) === null, 'the crashed host key to expire', 8000);
    const expiredAfter = Date.now() - killedAt;
    assert.ok(expiredAfter >= 500, `expired by its lease (${expiredAfter} ms), not at once`);
    await eventually(async () => (await clusters(caller.adminPort)).find((c) => c.name === 'app')!.endpoints.length === 1, 'the caller to drop app2');
    assert.match(await metricsText(caller.adminPort), /sidecar_discovery_updates_total\{cluster="app",result="applied"\} [3-9]/);

    // A reload that changes `register` withdraws the old key and registers the new address.
    const key2 = `/sidecar/services/app/${app2.address}`;
    server.writeConfig(`
listeners: []
clusters: []
register:
  endpoints: ["${etcd.url}"]
  service: app
  address: "${app2.address}"
  ttl: 2s
  health_url: "http://${app2.address}/healthz"
drain_delay: 0s
`);
    await eventually(async () => (await client.get(key2).string()) !== null && (await client.get(key1()).string()) === null, 'the registration to follow the reload');

    // Drain: the key goes at once (well within the 2 s lease), before the process stops.
    const t0 = Date.now();
    await httpRequest(server.adminPort, { method: 'POST', path: '/drain' });
    await eventually(async () => (await client.get(key2).string()) === null, 'the withdrawal on drain', 1500);
    assert.ok(Date.now() - t0 < 1500);
    await eventually(async () => (await httpRequest(port, { path: '/' })).status === 503, 'the caller to see the service empty');
  });
});
