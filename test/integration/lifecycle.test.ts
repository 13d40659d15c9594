// Lifecycle: hot reload (SIGHUP and file change) without dropping requests, invalid reloads rejected, SIGTERM drain, admin.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import { curl, parseCurlI } from '../helpers/client.js';
import { startSidecar } from '../helpers/sidecar.js';
import { freePort, startUpstream } from '../helpers/upstream.js';
import { connectH2, h2Request } from '../helpers/proto-http.js';

const config = (address: string, body = 'v1', extra = ''): string => `
drain_timeout: 5s
listeners:
  - name: in
    port: 0
    routes:
      - { name: version, match: { exact: /version }, direct_response: { status: 200, body: "${body}" } }
      - { name: app, match: { prefix: / }, cluster: app }
clusters:
  - name: app
    endpoints: ["${address}"]
${extra}`;

async function get(port: number, path: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
      })
      .on('error', reject);
  });
}

async function until(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('lifecycle', () => {
  it('reloads on SIGHUP and on file change; an invalid file keeps the old config and counts a failure', async () => {
    const up = await startUpstream();
    const sc = await startSidecar(config(up.address));
    try {
      const port = sc.ports.in!;
      assert.equal((await get(port, '/version')).body, 'v1');

      sc.writeConfig(config(up.address, 'v2'));
      sc.proc.kill('SIGHUP');
      await until(async () => (await get(port, '/version')).body === 'v2');

      sc.writeConfig(config(up.address, 'v3').replace('watch', 'watch')); // file watcher picks this up without a signal
      await until(async () => (await get(port, '/version')).body === 'v3');

      sc.writeConfig('listeners:\n  - name: in\n    port: nope\n');
      sc.proc.kill('SIGHUP');
      await until(async () => /config reload rejected/.test(sc.stderr()));
      assert.match(sc.stderr(), /sidecar\.yaml:4:11 listeners\[0\]\.port: expected number/);
      assert.equal((await get(port, '/version')).body, 'v3', 'old config stays in force');
      const metrics = (await get(sc.adminPort, '/metrics')).body;
      assert.match(metrics, /sidecar_config_reloads_total\{result="failure"\} [1-9]/);
      assert.match(metrics, /sidecar_config_reloads_total\{result="success"\} [2-9]/);
      assert.match(metrics, /sidecar_config_last_reload_successful 0/);
    } finally {
      await sc.stop();
      await up.close();
    }
  });

  it('requests in flight during a reload complete, and none fail while reloading under load', async () => {
    let release: (() => void) | undefined;
    const up = await startUpstream((req, res) => {
      if (req.url === '/slow') {
        release = () => res.end('slow done');
        return;
      }
      res.end('ok');
    });
    const sc = await startSidecar(config(up.address));
    try {
      const port = sc.ports.in!;
      const slow = get(port, '/slow');
      await until(async () => release !== undefined);
      // Steady load across several reloads.
      let failures = 0;
      let done = 0;
      let stop = false;
      const load = (async () => {
        while (!stop) {
          const r = await get(port, '/x').catch(() => ({ status: 0, body: '', headers: {} }));
          if (r.status !== 200) failures++;
          done++;
        }
      })();
      for (let i = 0; i < 5; i++) {
        sc.writeConfig(config(up.address, `r${i}`));
        sc.proc.kill('SIGHUP');
        await until(async () => (await get(port, '/version')).body === `r${i}`);
        await new Promise((r) => setTimeout(r, 100)); // let load run on each config
      }
      release!();
      const s = await slow;
      stop = true;
      await load;
      assert.equal(s.status, 200);
      assert.equal(s.body, 'slow done');
      assert.equal(failures, 0, `${failures} of ${done} requests failed during reloads`);
      assert.ok(done > 5, `only ${done} requests ran during the reloads`);
    } finally {
      await sc.stop();
      await up.close();
    }
  });

  it('a reload that moves a listener drains the old port (in-flight requests finish); one that cannot bind keeps it', async () => {
    let release: (() => void) | undefined;
    const up = await startUpstream((req, res) => {
      if (req.url === '/slow') {
        release = () => res.end('slow done');
        return;
      }
      res.end('ok');
    });
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as net.AddressInfo).port;
    const sc = await startSidecar(config(up.address));
    try {
      const oldPort = sc.ports.in!;
      const slow = get(oldPort, '/slow');
      await until(async () => release !== undefined);

      // A port that is taken: the reload fails while applying, and the listener keeps serving where it was.
      sc.writeConfig(config(up.address, 'v2').replace('port: 0', `port: ${taken}`));
      sc.proc.kill('SIGHUP');
      await until(async () => /config reload failed while applying/.test(sc.stderr()));
      assert.equal((await get(oldPort, '/version')).body, 'v1', 'the old listener still serves the old config');

      // A free port: the new listener serves the new config, the old one drains.
      const free = await freePort();
      sc.writeConfig(config(up.address, 'v3').replace('port: 0', `port: ${free}`));
      sc.proc.kill('SIGHUP');
      await until(async () => (await get(free, '/version').catch(() => ({ body: '' }))).body === 'v3');
      release!();
      const s = await slow;
      assert.equal(s.status, 200, 'the request in flight on the old port finished');
      assert.equal(s.body, 'slow done');
      await until(async () => (await get(oldPort, '/version').then(() => false, () => true)));

      // Same port, new socket settings: the old server lets go of the port, its request in flight still finishes.
      release = undefined;
      const slow2 = get(free, '/slow');
      await until(async () => release !== undefined);
      sc.writeConfig(config(up.address, 'v4').replace('port: 0', `port: ${free}\n    limits: { max_header_bytes: 32KiB }`));
      sc.proc.kill('SIGHUP');
      await until(async () => (await get(free, '/version').catch(() => ({ body: '' }))).body === 'v4');
      release!();
      const s2 = await slow2;
      assert.equal(s2.status, 200);
      assert.equal(s2.body, 'slow done');
    } finally {
      await sc.stop();
      await up.close();
      blocker.close();
    }
  });

  it('a reload may rename a listener on the same port and swap two listeners\' ports', async () => {
    const up = await startUpstream();
    const [p1, p2] = [await freePort(), await freePort()];
    const two = (a: string, pa: number, b: string, pb: number, body: string): string => `
listeners:
  - name: ${a}
    port: ${pa}
    routes: [{ name: v, match: { exact: /version }, direct_response: { status: 200, body: "${a} ${body}" } }]
  - name: ${b}
    port: ${pb}
    routes: [{ name: v, match: { exact: /version }, direct_response: { status: 200, body: "${b} ${body}" } }]
clusters: []
`;
    const sc = await startSidecar(two('one', p1, 'two', p2, 'v1'));
    try {
      assert.equal((await get(p1, '/version')).body, 'one v1');
      sc.writeConfig(two('uno', p1, 'two', p2, 'v2')); // rename on the same port
      sc.proc.kill('SIGHUP');
      await until(async () => (await get(p1, '/version').catch(() => ({ body: '' }))).body === 'uno v2');
      sc.writeConfig(two('uno', p2, 'two', p1, 'v3')); // swap the ports
      sc.proc.kill('SIGHUP');
      await until(async () => (await get(p1, '/version').catch(() => ({ body: '' }))).body === 'two v3');
      assert.equal((await get(p2, '/version')).body, 'uno v3');
      assert.doesNotMatch(sc.stderr(), /reload failed/);
    } finally {
      await sc.stop();
      await up.close();
    }
  });

  it('a client that gives up is counted under its route and cluster, as in the access log', async () => {
    const up = await startUpstream((_req, res) => {
      setTimeout(() => res.end('late'), 1500);
    });
    const sc = await startSidecar(config(up.address));
    try {
      const r = await curl(['-m', '0.4', `http://127.0.0.1:${sc.ports.in}/gives-up`]);
      assert.notEqual(r.code, 0, 'curl gave up');
      const line = await until(async () => sc.accessLog().some((l) => l.path === '/gives-up')).then(() => sc.accessLog().find((l) => l.path === '/gives-up')!);
      assert.equal(line.response_flag, 'DC');
      assert.equal(line.route, 'app');
      const metrics = (await get(sc.adminPort, '/metrics')).body;
      assert.match(metrics, /sidecar_requests_total\{listener="in",route="app",cluster="app",status_class="4xx"\} 1/);
    } finally {
      await sc.stop();
      await up.close();
    }
  });

  it('SIGTERM drains: after drain_delay (0 here) stops accepting, finishes in-flight requests, exits 0', async () => {
    let release: (() => void) | undefined;
    const up = await startUpstream((_req, res) => {
      release = () => res.end('finished');
    });
    const sc = await startSidecar(config(up.address));
    const port = sc.ports.in!;
    const inflight = get(port, '/work');
    await until(async () => release !== undefined);
    sc.proc.kill('SIGTERM');
    await until(async () => /no longer accepting/.test(sc.stderr()));
    // New connections are refused once drain_delay is over (operations.test.ts covers the delay itself).
    const refused = await curl([`http://127.0.0.1:${port}/new`]);
    assert.notEqual(refused.code, 0);
    release!();
    const r = await inflight;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'finished');
    assert.equal(await sc.exited, 0);
    await up.close();
  });

  it('SIGTERM past drain_timeout: the request still open is cut, logged as LR, and the process says so and exits 0', async () => {
    const up = await startUpstream((_req, res) => {
      setTimeout(() => res.end('too late'), 8000).unref();
    });
    const sc = await startSidecar(config(up.address).replace('drain_timeout: 5s', 'drain_timeout: 500ms'));
    const inflight = get(sc.ports.in!, '/endless').catch((err: Error) => err);
    const session = await connectH2(sc.ports.in!);
    const inflightH2 = h2Request(session, { ':path': '/endless-h2' }).catch((err: Error) => err);
    await until(async () => up.requests.some((r) => r.url === '/endless') && up.requests.some((r) => r.url === '/endless-h2'));
    sc.proc.kill('SIGTERM');
    assert.equal(await sc.exited, 0);
    assert.ok((await inflight) instanceof Error, 'the client saw its request cut');
    assert.match(sc.stderr(), /"connections":2,"drain_timeout_ms":500,"msg":"drain_timeout reached/);
    assert.match(sc.stderr(), /"msg":"stopped"/);
    const line = sc.accessLog().find((l) => l.path === '/endless');
    assert.ok(line, `the cut request has an access-log line:\n${sc.stdout()}`);
    assert.equal(line.response_flag, 'LR');
    assert.match(String(line.error), /drain_timeout ran out/);
    assert.equal(line.status, 499);
    await inflightH2;
    session.destroy();
    assert.equal(sc.accessLog().find((l) => l.path === '/endless-h2')?.response_flag, 'LR', 'an HTTP/2 request cut by the drain is LR too');
    await up.close();
  });

  it('admin: /ready, /live, /config (secrets redacted), /clusters, /metrics; loopback only by default', async () => {
    const up = await startUpstream();
    const sc = await startSidecar(
      config(up.address, 'v1', `  - name: twin # same endpoint and pool settings as app, no route: its counters stay at 0
    endpoints: ["${up.address}"]`).replace(
        '{ name: app, match: { prefix: / }, cluster: app }',
        "{ name: app, match: { prefix: / }, cluster: app, request_headers: { set: { authorization: 'Bearer SUPERSECRET', x-api-key: k3y, cookie: 'sid=abc', x-tenant: acme } } }",
      ),
    );
    try {
      await get(sc.ports.in!, '/a');
      const base = `http://127.0.0.1:${sc.adminPort}`;
      assert.equal(parseCurlI((await curl(['-i', `${base}/ready`])).stdout).status, 200);
      assert.equal(parseCurlI((await curl(['-i', `${base}/live`])).stdout).status, 200);
      const cfg = JSON.parse((await curl([`${base}/config`])).stdout) as { config: { listeners: Array<{ name: string }>; admin: { address: string } } };
      assert.equal(cfg.config.listeners[0]!.name, 'in');
      assert.equal(cfg.config.admin.address, '127.0.0.1');
      const text = JSON.stringify(cfg);
      for (const secret of ['SUPERSECRET', 'k3y', 'sid=abc']) assert.ok(!text.includes(secret), `${secret} is shown by /config`);
      assert.ok(text.includes('acme'), 'ordinary header values are shown');
      const clusters = JSON.parse((await curl([`${base}/clusters`])).stdout) as { clusters: Array<{ name: string; endpoints: Array<{ address: string; requests: number; health: string }> }> };
      assert.equal(clusters.clusters[0]!.endpoints[0]!.address, up.address);
      assert.equal(clusters.clusters[0]!.endpoints[0]!.requests, 1);
      assert.equal(clusters.clusters[0]!.endpoints[0]!.health, 'healthy');
      const twin = clusters.clusters.find((c) => c.name === 'twin')!;
      assert.equal(twin.endpoints[0]!.requests, 0, 'a cluster sharing the pool does not share the counters');
      const metrics = (await curl([`${base}/metrics`])).stdout;
      assert.match(metrics, /sidecar_requests_total\{listener="in",route="app",cluster="app",status_class="2xx"\} 1/);
      assert.match(metrics, /sidecar_request_duration_seconds_bucket\{listener="in",route="app",cluster="app",le="\+Inf"\} 1/);
      assert.match(metrics, /sidecar_downstream_connections_active\{listener="in"\} \d/);
    } finally {
      await sc.stop();
      await up.close();
    }
  });
});
