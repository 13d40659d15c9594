// Requests that explain themselves: admin /debug/requests and `sidecar explain` against a real sidecar.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BIN, startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest } from '../helpers/strict-net.js';
import { freePort, reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);

async function admin(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('/debug/requests', () => {
  let sidecar: RunningSidecar;
  let down: TestUpstream;
  let up: TestUpstream;
  let refused: number;

  before(async () => {
    refused = await freePort();
    down = await startUpstream((_req, res) => reply(res, 503, 'down\n'));
    up = await startUpstream((_req, res) => reply(res, 200, 'ok\n'));
    sidecar = await startSidecar(`
admin: { port: 0, debug_requests: { max_requests: 4, max_failed_requests: 8 } }
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: /retry }
        cluster: down_only
        retry: { retry_on: [5xx], max_retries: 1, backoff: { base_interval: 1ms, max_interval: 2ms } }
      - match: { prefix: /refused }
        cluster: refused
        timeout: 3s
      - match: { prefix: / }
        cluster: up
  - name: ids
    port: 0
    request_id_in_response: true
    routes:
      - match: { prefix: /retry }
        cluster: down_only
      - match: { prefix: / }
        cluster: up
clusters:
  - { name: down_only, endpoints: ["${down.address}"] }
  - { name: refused, endpoints: ["127.0.0.1:${refused}"] }
  - { name: up, endpoints: ["${up.address}"] }
`);
  });

  after(async () => {
    await sidecar.stop();
    await down.close();
    await up.close();
  });

  it('tells why a retried request failed, as text, JSON and through sidecar explain', async () => {
    const port = sidecar.ports.in!;
    const res = await httpRequest(port, { path: '/retry/a', headers: { 'x-request-id': 'req-retried-1' } });
    assert.equal(res.status, 503);
    const text = await admin(sidecar.adminPort, '/debug/requests/req-retried-1');
    assert.equal(text.status, 200, text.body);
    assert.match(text.body, /Route .* sent it to cluster down_only/);
    assert.match(text.body, /Attempt 1 to 127\.0\.0\.1:\d+: .*response 503/);
    assert.match(text.body, /Attempt 2 to 127\.0\.0\.1:\d+: .*response 503/);
    assert.match(text.body, /Decision: attempt 1 answered 503: retry_on matched \(5xx\), retrying/);
    assert.match(text.body, /Decision: attempt 2 answered 503: retry_on matched \(5xx\) but not retried: attempts used up/);
    const json = JSON.parse((await admin(sidecar.adminPort, '/debug/requests/req-retried-1?format=json')).body) as { attempts: unknown[]; cluster: string; failed: boolean; story: string };
    assert.equal(json.cluster, 'down_only');
    assert.equal(json.attempts.length, 2);
    assert.equal(json.failed, true);

    const cli = await run(process.execPath, [BIN, 'explain', 'req-retried-1', '--admin', `127.0.0.1:${sidecar.adminPort}`]);
    assert.equal(cli.stdout, text.body);
    await assert.rejects(run(process.execPath, [BIN, 'explain', 'no-such-id', '--admin', `127.0.0.1:${sidecar.adminPort}`]), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr, /answered 404: no request no-such-id/);
      return true;
    });
  });

  it('puts the request id on upstream answers with request_id_in_response, and the id leads to the story', async () => {
    const plain = await httpRequest(sidecar.ports.in!, { path: '/plain-answer' });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['x-request-id'], undefined, 'off by default');
    const ok = await httpRequest(sidecar.ports.ids!, { path: '/id-answer' });
    assert.equal(ok.status, 200);
    const id = ok.headers['x-request-id'];
    assert.ok(typeof id === 'string' && id.length > 0, JSON.stringify(ok.headers));
    assert.equal(up.requests.at(-1)!.headers['x-request-id'], id, 'the id the upstream saw');
    const story = await admin(sidecar.adminPort, `/debug/requests/${id}`);
    assert.equal(story.status, 200, story.body);
    // An upstream 503 passed through carries it too, and the caller's own id is the one answered.
    const failed = await httpRequest(sidecar.ports.ids!, { path: '/retry/x', headers: { 'x-request-id': 'caller-id-7' } });
    assert.equal(failed.status, 503);
    assert.equal(failed.headers['x-request-id'], 'caller-id-7');
  });

  it('names the connect failure, the deadline and the response flag', async () => {
    const res = await httpRequest(sidecar.ports.in!, { path: '/refused', headers: { 'x-request-id': 'req-refused-1' } });
    assert.equal(res.status, 503);
    const { body } = await admin(sidecar.adminPort, '/debug/requests/req-refused-1');
    assert.match(body, /deadline of 3\.00 s/);
    assert.match(body, /Attempt 1 to 127\.0\.0\.1:\d+: .*failed UF/);
    assert.match(body, /Outcome: failed with response flag UF/);
  });

  it('keeps failed requests while successes roll over', async () => {
    for (let i = 0; i < 10; i++) assert.equal((await httpRequest(sidecar.ports.in!, { path: `/ok/${i}`, headers: { 'x-request-id': `ok-${i}` } })).status, 200);
    const list = JSON.parse((await admin(sidecar.adminPort, '/debug/requests?format=json')).body) as { recent: Array<{ id: string }>; failed: Array<{ id: string }> };
    assert.deepEqual(list.recent.map((r) => r.id), ['ok-9', 'ok-8', 'ok-7', 'ok-6']);
    assert.ok(list.failed.some((r) => r.id === 'req-retried-1'));
    assert.match((await admin(sidecar.adminPort, '/debug/requests')).body, /failed or slow \(\d+\):\nreq-refused-1/);
    assert.match((await admin(sidecar.adminPort, '/debug/requests/ok-9')).body, /Outcome: succeeded \(200\)/);
  });

  it('GET /latency: per-minute quantiles per listener, route, cluster and endpoint', async () => {
    const lat = JSON.parse((await admin(sidecar.adminPort, '/latency')).body) as {
      relative_error: number;
      series: Record<'listener' | 'route' | 'cluster' | 'endpoint', Record<string, { window: { count: number; p99: number }; minutes: unknown[] }>>;
    };
    assert.equal(lat.relative_error, 0.02);
    assert.ok(lat.series.listener.in!.window.count >= 12);
    assert.ok(lat.series.cluster.up!.window.count >= 10);
    assert.ok(lat.series.cluster.up!.window.p99 > 0);
    assert.equal(lat.series.endpoint[`up/${up.address}`]!.minutes.length, 15);
    assert.ok(Object.keys(lat.series.route).length >= 2);
  });
});

describe('admin.latency_history', () => {
  it('off: no series are kept and /latency says so; a reload turns it back on', async () => {
    const up = await startUpstream((_req, res) => reply(res, 200, 'ok\n'));
    const rest = `listeners:
  - name: in
    port: 0
    routes: [{ match: { prefix: / }, cluster: up }]
clusters:
  - { name: up, endpoints: ["${up.address}"] }
`;
    const sc = await startSidecar(`admin: { port: 0, latency_history: { enabled: false } }\n${rest}`);
    type Latency = { enabled: boolean; series: Record<'listener' | 'cluster', Record<string, { window: { count: number } }>> };
    const latency = async (): Promise<Latency> => JSON.parse((await admin(sc.adminPort, '/latency')).body) as Latency;
    try {
      for (let i = 0; i < 3; i++) assert.equal((await httpRequest(sc.ports.in!, { path: `/off${i}` })).status, 200);
      const off = await latency();
      assert.equal(off.enabled, false);
      assert.deepEqual(off.series.listener, {});
      assert.deepEqual(off.series.cluster, {});

      sc.writeConfig(`admin: { port: ${sc.adminPort}, latency_history: { enabled: true } }\n${rest}`);
      sc.proc.kill('SIGHUP');
      for (let i = 0; i < 100 && !/config reloaded/.test(sc.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(sc.stderr(), /config reloaded/);
      for (let i = 0; i < 2; i++) assert.equal((await httpRequest(sc.ports.in!, { path: `/on${i}` })).status, 200);
      const on = await latency();
      assert.equal(on.enabled, true);
      assert.equal(on.series.listener.in!.window.count, 2);
      assert.equal(on.series.cluster.up!.window.count, 2);
    } finally {
      await sc.stop();
      await up.close();
    }
  });
});
