// A reload keeps what the sidecar knows about endpoints that stay: a known-dead endpoint stays unhealthy after a
// comment-only reload (it used to go back to "unknown" and take requests), and after a health_check settings change.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { clusters, metricsText } from '../helpers/admin.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

/**
 * The first reload moves the admin server from the test's port 0 to the port it got (the helper writes it into the
 * config), so an admin request may meet the rebind: such a connection error counts as "not yet".
 */
async function eventually(cond: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond().catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET') return false;
    throw err;
  }))) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function healthOf(adminPort: number, address: string): Promise<string | undefined> {
  const c = (await clusters(adminPort)).find((x) => x.name === 'app');
  return c?.endpoints.find((e) => e.address === address)?.health;
}

async function reloads(adminPort: number): Promise<number> {
  const m = /sidecar_config_reloads_total\{result="success"\} (\d+)/.exec(await metricsText(adminPort));
  return m ? Number(m[1]) : 0;
}

describe('endpoint state across reloads', () => {
  let sidecar: RunningSidecar;
  let live: TestUpstream;
  let sick: TestUpstream; // answers 503 to everything; its /healthz takes 700 ms, so a forgotten state shows for that long
  const config = (interval: string, comment = ''): string => `${comment}
listeners:
  - name: in
    port: 0
    routes:
      - { match: { prefix: / }, cluster: app }
clusters:
  - name: app
    endpoints: ["${live.address}", "${sick.address}"]
    panic_threshold: 0
    health_check: { path: /healthz, interval: ${interval}, timeout: 3s, unhealthy_threshold: 1, healthy_threshold: 1 }
`;

  before(async () => {
    live = await startUpstream((_req, res) => reply(res, 200, 'live\n'));
    sick = await startUpstream((req, res) => {
      if (req.url === '/healthz') setTimeout(() => reply(res, 503, 'sick\n'), 700);
      else reply(res, 503, 'sick\n');
    });
    sidecar = await startSidecar(config('100ms'));
  });

  after(async () => {
    await sidecar.stop();
    await live.close();
    await sick.close();
  });

  it('a comment-only reload and a health_check change keep a dead endpoint unhealthy; no request reaches it', async () => {
    const admin = sidecar.adminPort;
    const port = sidecar.ports.in!;
    try {
    await eventually(async () => (await healthOf(admin, sick.address)) === 'unhealthy', 'the sick endpoint to be found unhealthy');
    const edits = [config('100ms', '# only a comment changed'), config('150ms', '# and now the probe interval')];
    for (const [i, yaml] of edits.entries()) {
      const before = await reloads(admin);
      sidecar.writeConfig(yaml);
      await eventually(async () => (await reloads(admin)) > before, `reload ${i + 1}`);
      let health: string | undefined;
      await eventually(async () => (health = await healthOf(admin, sick.address)) !== undefined, 'the admin server');
      assert.equal(health, 'unhealthy', `reload ${i + 1} kept what the sidecar knew`);
      const statuses: number[] = [];
      for (let k = 0; k < 6; k++) statuses.push((await httpRequest(port, { path: `/r${i}-${k}` })).status);
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200], `requests right after reload ${i + 1}`);
    }
    } catch (err) {
      throw new Error(`${(err as Error).message}\nsidecar log:\n${sidecar.stderr().slice(-3000)}`, { cause: err });
    }
  });
});
