// Locality-aware balancing through a running sidecar whose endpoints (with zones) come from etcd: traffic stays in
// the local zone, spills over to the other zone once the local endpoint is ejected, and the zones show in /clusters.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { clusters } from '../helpers/admin.js';
import { startEtcd, type TestEtcd } from '../helpers/etcd.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('locality-aware balancing with etcd zones', () => {
  let etcd: TestEtcd;
  let client: Etcd3;
  let local: TestUpstream;
  let remote: TestUpstream;
  let localFails = false;
  let sidecar: RunningSidecar;

  before(async () => {
    etcd = await startEtcd();
    client = new Etcd3({ hosts: etcd.url });
    local = await startUpstream((_q, res) => reply(res, localFails ? 503 : 200, 'local\n'));
    remote = await startUpstream((_q, res) => reply(res, 200, 'remote\n'));
    await client.put(`/sidecar/services/api/${local.address}`).value('{"zone":"a"}');
    await client.put(`/sidecar/services/api/${remote.address}`).value('{"zone":"b"}');
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: / }
        cluster: api
clusters:
  - name: api
    discovery:
      etcd: { endpoints: ["${etcd.url}"], service: api }
    locality: { local_zone: a, min_available_percent: 100 }
    panic_threshold: 0
    outlier_detection: { consecutive_5xx: 2, base_ejection_time: 30s, max_ejection_percent: 100 }
`);
  });

  after(async () => {
    await sidecar?.stop();
    client?.close();
    await local?.close();
    await remote?.close();
    await etcd?.dispose();
  });

  it('prefers the local zone and spills over when it is ejected', async () => {
    const port = sidecar.ports.in!;
    const end = Date.now() + 5000;
    while ((await httpRequest(port, { path: '/' })).status !== 200) {
      if (Date.now() > end) assert.fail('no endpoints from etcd');
      await sleep(50);
    }
    const bodies = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const b = (await httpRequest(port, { path: '/' })).body;
      bodies.set(b, (bodies.get(b) ?? 0) + 1);
    }
    assert.deepEqual([...bodies], [['local\n', 20]], 'all in the local zone');
    const zones = (await clusters(sidecar.adminPort)).find((c) => c.name === 'api')!.endpoints.map((e) => (e as unknown as { zone: string }).zone).sort();
    assert.deepEqual(zones, ['a', 'b']);
    localFails = true;
    for (let i = 0; i < 2; i++) assert.equal((await httpRequest(port, { path: '/' })).status, 503);
    for (let i = 0; i < 10; i++) assert.equal((await httpRequest(port, { path: '/' })).body, 'remote\n', 'spilled over to zone b');
  });
});
