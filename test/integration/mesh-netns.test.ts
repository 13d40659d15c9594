// A mesh of four hosts as network namespaces on a bridge (scripts/netns-mesh.ts, the topology `npm run mesh:up`
// starts): each host runs an app and its sidecar, which registers the app in a real etcd (on the bridge, lease TTL
// 2 s; host 1 as "frontend", hosts 2-4 as "backend"); host 1's app calls "backend" through its sidecar, which finds
// it through etcd and speaks HTTP/2 over mTLS to the other sidecars (SPIFFE identities checked both ways). Host 3 is reached through a TCP fault
// relay. Host 4's link is cut: traffic moves to the others with a bounded client-visible error rate and host 4's
// endpoint leaves host 1's /clusters once its lease expires. Then latency on host 3's link: least_request sends it
// less; then loss on it: outlier detection ejects it while the retries keep the client whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendEndpoints, backendRetries, identityOf, leftovers, meshClient, meshDown, meshUp, setRelay, type ClientResult, type MeshState } from '../../scripts/netns-mesh.js';
import { requireCommand } from '../helpers/system.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const share = (r: ClientResult, app: string): number => (r.by[app] ?? 0) / Math.max(1, r.ok);

/** The last access-log line of a listener in a sidecar's log; the log flushes on a timer, so it is waited for. */
async function lastLogLine(file: string, listener: string): Promise<string> {
  for (const until = Date.now() + 3000; ; await sleep(50)) {
    const line = readFileSync(file, 'utf8').split('\n').filter((l) => l.includes(`"listener":"${listener}"`)).at(-1);
    if (line !== undefined) return line;
    if (Date.now() > until) throw new Error(`no access-log line of listener ${listener} in ${file} after 3 s`);
  }
}

test('four hosts in netns, discovery through etcd, mTLS h2 between sidecars: a cut host, a slow link, a lossy link', { timeout: 150_000 }, async (t) => {
  const note = (line: string): void => t.diagnostic(`mesh: ${line}`);
  requireCommand('ip', 'iproute2');
  requireCommand('etcd', 'etcd-server');
  const id = `t${process.pid % 100000}`;
  const dir = join(tmpdir(), `sidecar-mesh-${id}`);
  let s: MeshState | undefined;
  const began = Date.now();
  try {
    s = await meshUp({ id, subnet: 100 + (process.pid % 150), dir, leaseTtl: '2s' });
    const [, , h3, h4] = s.hosts as [MeshState['hosts'][0], MeshState['hosts'][0], MeshState['hosts'][0], MeshState['hosts'][0]];
    note(`up in ${Date.now() - began} ms; host 1 discovered ${JSON.stringify((await backendEndpoints(s)).map((e) => `${e.address} (${e.source})`))}`);

    for (const h of s.hosts) {
      const reg = ((await (await fetch(`${h.admin}/clusters`)).json()) as { registration: { key: string; state: string } }).registration;
      assert.deepEqual(reg, { ...reg, key: `/sidecar/services/${h.service}/${h.registered}`, state: 'registered' }, `host ${h.i} registered`);
    }
    // Everyone serves, over mTLS: host 2's inbound saw host 1's identity, host 1 saw the backends'.
    const before = await meshClient(s, 30, 3);
    assert.equal(before.errors, 0, JSON.stringify(before));
    for (const k of ['app-2', 'app-3', 'app-4']) assert.ok((before.by[k] ?? 0) > 0, `before: ${JSON.stringify(before)}`);
    const lastIn = JSON.parse(await lastLogLine(join(s.dir, 'logs', 'sidecar2.log'), 'inbound')) as { peer_identity: string; protocol: string };
    assert.equal(lastIn.peer_identity, identityOf('frontend'));
    assert.equal(lastIn.protocol, 'HTTP/2');
    const lastOut = JSON.parse(await lastLogLine(join(s.dir, 'logs', 'sidecar1.log'), 'outbound')) as { upstream_identity: string };
    assert.equal(lastOut.upstream_identity, identityOf('backend'));

    // Cut host 4 off while host 1's app keeps calling.
    const retriesBefore = await backendRetries(s);
    const cutAt = Date.now();
    execFileSync('ip', ['-n', h4.ns, 'link', 'set', h4.veth, 'down']);
    const during = meshClient(s, 150, 4);
    let goneAfter: number | undefined;
    while (goneAfter === undefined && Date.now() - cutAt < 15_000) {
      if (!(await backendEndpoints(s)).some((e) => e.address === h4.registered)) goneAfter = Date.now() - cutAt;
      else await sleep(100);
    }
    const cut = await during;
    const rate = cut.errors / (cut.ok + cut.errors);
    const retried = (await backendRetries(s)) - retriesBefore;
    note(`host 4 cut; client-visible error rate ${(rate * 100).toFixed(1)}% (${cut.errors}/${cut.ok + cut.errors}), served by ${JSON.stringify(cut.by)}, ${retried} retries by host 1's sidecar; its endpoint left host 1's /clusters ${goneAfter ?? '(never)'} ms after the cut (lease TTL 2 s)`);
    assert.ok(goneAfter !== undefined, "host 4's endpoint never left host 1's /clusters");
    assert.ok(goneAfter <= 2_000 + 4_000, `host 4 left only after ${goneAfter} ms (TTL 2 s + keep-alive and expiry slack)`);
    assert.ok(rate <= 0.05, `error rate ${rate}`);
    assert.ok(retried > 0, 'the cut was felt (attempts to host 4 failed and were retried), not just avoided');
    const after = await meshClient(s, 20, 2);
    assert.equal(after.by['app-4'] ?? 0, 0, 'the cut host gets no traffic');
    assert.equal(after.errors, 0, JSON.stringify(after));

    // Latency on host 3's link (through the relay): least_request sends the slow endpoint fewer requests.
    const even = await meshClient(s, 120, 8);
    await setRelay(s, { latencyMs: 100 });
    const slow = await meshClient(s, 120, 8);
    await setRelay(s, { latencyMs: 0 });
    note(`host 3's link +100 ms per chunk each way: its share of requests ${(share(even, 'app-3') * 100).toFixed(0)}% -> ${(share(slow, 'app-3') * 100).toFixed(0)}% (least_request); ${JSON.stringify(even.by)} -> ${JSON.stringify(slow.by)}`);
    assert.equal(slow.errors, 0, JSON.stringify(slow));
    assert.ok(share(even, 'app-3') >= 0.2, `without latency host 3 serves its part: ${JSON.stringify(even)}`);
    assert.ok(share(slow, 'app-3') <= share(even, 'app-3') / 2, `the slow endpoint gets fewer requests: ${JSON.stringify(even.by)} -> ${JSON.stringify(slow.by)}`);

    // Loss on host 3's link: connections through it reset; outlier detection ejects host 3, retries hide the failures.
    await setRelay(s, { loss: 0.3 });
    const lossy = await meshClient(s, 100, 4);
    const ejected = (await backendEndpoints(s)).find((e) => e.address === h3.registered);
    const { faults } = await setRelay(s, { loss: 0 });
    const lossRate = lossy.errors / (lossy.ok + lossy.errors);
    note(`host 3's link loses 30% of chunks: ${faults} connections reset, host 3 ejected: ${ejected?.ejected}, client-visible error rate ${(lossRate * 100).toFixed(1)}%, served by ${JSON.stringify(lossy.by)}`);
    assert.ok(faults > 0, 'the relay reset connections');
    assert.equal(ejected?.ejected, true, `host 3 ejected: ${JSON.stringify(ejected)}`);
    assert.ok(lossRate <= 0.05, `error rate under loss ${lossRate}`);
    assert.ok((lossy.by['app-2'] ?? 0) >= 80, `host 2 took over: ${JSON.stringify(lossy)}`);
    note(`whole run ${Date.now() - began} ms`);
  } finally {
    await meshDown(dir);
    assert.deepEqual(leftovers(id), [], 'nothing of the mesh is left');
  }
});
