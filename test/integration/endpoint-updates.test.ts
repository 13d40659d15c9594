// Endpoints change at run time through the file discovery source, under load and without a snapshot reload: no
// request fails, a removed endpoint drains, and the endpoints that stay keep their health, ejection and counters.
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { clusters, metricsText, type EndpointState } from '../helpers/admin.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

interface Shown extends EndpointState {
  weight: number;
  source: string;
}

async function eventually(cond: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('endpoint updates without a reload (file discovery)', () => {
  let dir: string;
  let file: string;
  let sidecar: RunningSidecar;
  let u1: TestUpstream;
  let u2: TestUpstream; // removed under load, then added back; answers after 30 ms so removal catches requests in flight
  let u3: TestUpstream; // added under load
  let flaky: TestUpstream; // 503 to requests: ejected by outlier detection before the load starts
  let down: TestUpstream; // failing /healthz: unhealthy before the load starts
  let n = 0;

  const app = (name: string, status: number, healthz = 200, delayMs = 0): Promise<TestUpstream> =>
    startUpstream((req, res) => {
      if (req.url === '/healthz') return reply(res, healthz, 'hz\n');
      if (delayMs > 0) setTimeout(() => reply(res, status, `${name}\n`), delayMs);
      else reply(res, status, `${name}\n`);
    });

  /** Atomic publish: write a temp file and rename it over the watched one. */
  const publish = (entries: readonly (TestUpstream | { u: TestUpstream; weight: number })[]): void => {
    const list = entries.map((e) => ('u' in e ? { address: e.u.address, weight: e.weight } : e.address));
    const temp = path.join(dir, `.endpoints-${n++}.tmp`);
    writeFileSync(temp, JSON.stringify({ endpoints: list }));
    renameSync(temp, file);
  };

  const shown = async (): Promise<Map<string, Shown>> => {
    const c = (await clusters(sidecar.adminPort)).find((x) => x.name === 'app')!;
    return new Map((c.endpoints as Shown[]).map((e) => [e.address, e]));
  };
  const reloads = async (): Promise<string> => /sidecar_config_reloads_total\{result="success"\} (\d+)/.exec(await metricsText(sidecar.adminPort))?.[1] ?? '0';

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-eds-'));
    file = path.join(dir, 'endpoints.json');
    u1 = await app('u1', 200);
    u2 = await app('u2', 200, 200, 30);
    u3 = await app('u3', 200);
    flaky = await app('flaky', 503);
    down = await app('down', 503, 500);
    publish([u1, u2, flaky, down]);
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: / }
        cluster: app
        retry: { retry_on: [gateway-error], max_retries: 2, backoff: { base_interval: 1ms, max_interval: 5ms } }
clusters:
  - name: app
    discovery: { file: { path: "${file}" } }
    panic_threshold: 0
    health_check: { path: /healthz, interval: 100ms, timeout: 1s, unhealthy_threshold: 1, healthy_threshold: 1 }
    outlier_detection: { consecutive_5xx: 3, consecutive_gateway_failure: 3, base_ejection_time: 60s, max_ejection_percent: 50 }
`);
  });

  after(async () => {
    await sidecar.stop();
    for (const u of [u1, u2, u3, flaky, down]) await u.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('changes endpoints under load with zero failed requests and keeps the state of those that stay', async () => {
    const port = sidecar.ports.in!;
    await eventually(async () => (await shown()).get(down.address)?.health === 'unhealthy', 'down to be unhealthy');
    for (let i = 0; i < 60 && (await shown()).get(flaky.address)?.ejected !== true; i++) {
      assert.equal((await httpRequest(port, { path: `/warm${i}` })).status, 200, 'retries hide the flaky endpoint');
    }
    const start = await shown();
    const flakyBefore = start.get(flaky.address)!;
    assert.equal(flakyBefore.ejected, true, 'flaky is ejected before the load');
    assert.equal(start.get(u1.address)!.source, `file:${file}`, '/clusters names each endpoint source');
    const u1Before = start.get(u1.address)!.requests;
    const reloadsBefore = await reloads();

    // Load: 6 paced workers on keep-alive connections, ~300 req/s, for 4 s, while the endpoint file changes.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
    const statuses = new Map<number, number>();
    let done = 0;
    let stop = false;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const t0 = Date.now();
        let status: number;
        try {
          status = (await httpRequest(port, { path: `/load/${w}/${i}`, agent, timeoutMs: 5000 })).status;
        } catch {
          status = -1;
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        done++;
        await sleep(Math.max(0, 20 - (Date.now() - t0)));
      }
    };
    const workers = Array.from({ length: 6 }, (_, w) => worker(w));
    await sleep(1000);
    publish([u1, flaky, down, u3]); // remove u2 (requests in flight on it finish), add u3
    await eventually(async () => !(await shown()).has(u2.address), 'u2 to leave the set');
    const u2Seen = u2.requests.length;
    await sleep(1000);
    assert.ok(u2.requests.length <= u2Seen + 6, `a removed endpoint gets no new requests (${u2.requests.length - u2Seen} more)`);
    publish([{ u: u1, weight: 3 }, flaky, down, u3]); // weight change
    await eventually(async () => (await shown()).get(u1.address)?.weight === 3, 'the weight change');
    await sleep(1000);
    publish([{ u: u1, weight: 3 }, flaky, down, u3, u2]); // u2 back
    await eventually(async () => (await shown()).has(u2.address), 'u2 to come back');
    await sleep(1000);
    stop = true;
    await Promise.all(workers);
    agent.destroy();

    assert.deepEqual([...statuses.keys()], [200], `every request succeeded: ${JSON.stringify([...statuses])}`);
    assert.ok(done > 400, `only ${done} requests ran in 4 s`);
    assert.ok(u3.requests.length > 0, 'the added endpoint took traffic');
    const end = await shown();
    assert.equal(await reloads(), reloadsBefore, 'no snapshot reload happened');
    assert.equal(end.get(down.address)!.health, 'unhealthy', 'health state of a staying endpoint kept');
    const flakyAfter = end.get(flaky.address)!;
    assert.equal(flakyAfter.ejected, true, 'ejection of a staying endpoint kept');
    // The same ejection: the wall-clock end is derived from the monotonic deadline at each read, so it moves by as
    // much as the two clocks drift apart meanwhile (21 ms seen on a loaded CI machine); a new ejection would move it
    // by the 4 s and more that passed between the two reads.
    const drift = Math.abs(Date.parse(flakyAfter.ejected_until!) - Date.parse(flakyBefore.ejected_until!));
    assert.ok(drift <= 1000, `ejected_until moved by ${drift} ms`);
    assert.equal(flakyAfter.ejections, 1);
    assert.ok(end.get(u1.address)!.requests > u1Before, 'counters of a staying endpoint carry on (not reset)');
    assert.equal(end.get(u1.address)!.source, `file:${file}`);
  });
});
