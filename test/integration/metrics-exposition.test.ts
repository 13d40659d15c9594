// /metrics against a real sidecar: content negotiation (curl with both Accept headers), process and runtime series,
// the per-endpoint cap, and merging a real node:http app's metrics (up, failing, slow, too large).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { curl, parseCurlI } from '../helpers/client.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { requireCommand } from '../helpers/system.js';
import { httpRequest } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { parse } from '../../src/observability/exposition.js';
import { METRIC_LABELS } from '../../src/observability/metric-labels.js';

const OPENMETRICS = 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/** The app: its own Prometheus metrics, or a failure mode the test picks. */
interface App {
  port: number;
  mode: 'ok' | 'error' | 'slow' | 'huge' | 'garbage';
  scrapes: number;
  close(): Promise<void>;
}

async function startApp(): Promise<App> {
  const app: App = { port: 0, mode: 'ok', scrapes: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') return reply(res, 404, 'no\n');
    app.scrapes++;
    const body = [
      '# HELP app_orders_total Orders placed.',
      '# TYPE app_orders_total counter',
      'app_orders_total{kind="book"} 42',
      '# HELP process_cpu_seconds_total CPU of the app.',
      '# TYPE process_cpu_seconds_total counter',
      'process_cpu_seconds_total 1.25',
      '# TYPE app_queue_seconds histogram',
      'app_queue_seconds_bucket{le="0.5"} 1',
      'app_queue_seconds_bucket{le="+Inf"} 2',
      'app_queue_seconds_sum 1.7',
      'app_queue_seconds_count 2',
      '',
    ].join('\n');
    switch (app.mode) {
      case 'ok':
        return reply(res, 200, body, { 'content-type': 'text/plain; version=0.0.4' });
      case 'error':
        return reply(res, 500, 'broken\n');
      case 'slow':
        setTimeout(() => reply(res, 200, body), 3000).unref();
        return;
      case 'huge':
        return reply(res, 200, `${body}${'x_filler 1\n'.repeat(20_000)}`);
      case 'garbage':
        return reply(res, 200, 'this is { not metrics\n');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  app.port = (server.address() as AddressInfo).port;
  app.close = () => new Promise((r) => (server.closeAllConnections(), server.close(() => r())));
  return app;
}

const scrape = async (port: number, accept?: string): Promise<{ status: number; type: string; vary: string; body: string }> => {
  const res = await curl(['-i', ...(accept ? ['-H', `Accept: ${accept}`] : []), `http://127.0.0.1:${port}/metrics`]);
  assert.equal(res.code, 0, res.stderr);
  const r = parseCurlI(res.stdout);
  return { status: r.status, type: r.headers['content-type'] ?? '', vary: r.headers.vary ?? '', body: r.body };
};

const value = (text: string, series: string): number | undefined => {
  for (const line of text.split('\n')) if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1).split(' ')[0]);
  return undefined;
};

describe('/metrics exposition', () => {
  let sidecar: RunningSidecar;
  let ups: TestUpstream[];
  let app: App;

  before(async () => {
    requireCommand('curl', 'curl');
    ups = await Promise.all([0, 1, 2, 3].map(() => startUpstream((_req, res) => reply(res, 200, 'ok\n'))));
    app = await startApp();
    sidecar = await startSidecar(`
admin:
  port: 0
  metrics:
    max_endpoint_series: 2
    merge_app: { url: "http://127.0.0.1:${app.port}/metrics", timeout: 500ms, max_bytes: 64KiB }
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: /narrow }
        cluster: narrow
      - match: { prefix: / }
        cluster: wide
clusters:
  - { name: wide, lb: { policy: round_robin }, endpoints: ["${ups[0]!.address}", "${ups[1]!.address}", "${ups[2]!.address}"] }
  - { name: narrow, endpoints: ["${ups[3]!.address}"] }
`);
    for (let i = 0; i < 6; i++) assert.equal((await httpRequest(sidecar.ports.in!, { path: `/w${i}` })).status, 200);
    for (let i = 0; i < 2; i++) assert.equal((await httpRequest(sidecar.ports.in!, { path: `/narrow/${i}` })).status, 200);
  });

  after(async () => {
    await sidecar.stop();
    await Promise.all(ups.map((u) => u.close()));
    await app.close();
  });

  it('answers Prometheus text 0.0.4 by default and OpenMetrics 1.0.0 when the Accept header asks', async () => {
    const text = await scrape(sidecar.adminPort);
    assert.equal(text.status, 200);
    assert.equal(text.type, 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(text.vary, 'accept');
    assert.match(text.body, /^# TYPE sidecar_requests_total counter$/m);
    assert.doesNotMatch(text.body, /# EOF|# UNIT/);
    assert.equal(value(text.body, 'sidecar_requests_total{listener="in",route="route_0",cluster="narrow",status_class="2xx"}'), 2);

    const om = await scrape(sidecar.adminPort, OPENMETRICS);
    assert.equal(om.status, 200);
    assert.equal(om.type, 'application/openmetrics-text; version=1.0.0; charset=utf-8');
    assert.match(om.body, /^# TYPE sidecar_requests counter$/m);
    assert.match(om.body, /^# UNIT sidecar_request_duration_seconds seconds$/m);
    assert.match(om.body, /\n# EOF\n$/);
    assert.equal(value(om.body, 'sidecar_requests_total{listener="in",route="route_0",cluster="narrow",status_class="2xx"}'), 2);
    assert.match(om.body, /^sidecar_request_duration_seconds_bucket\{listener="in",route="route_0",cluster="narrow",le="1\.0"\} 2$/m);
    // Both parse as what they claim to be (OpenMetrics strictly: one family per name, TYPE before samples).
    assert.doesNotThrow(() => parse(text.body, 'prometheus'));
    assert.doesNotThrow(() => parse(om.body, 'openmetrics'));
    const names = om.body.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]);
    assert.equal(new Set(names).size, names.length, 'one TYPE line per family');
  });

  it('every scraped series has only the labels docs/metrics.md lists for its family', async () => {
    app.mode = 'ok';
    const { body } = await scrape(sidecar.adminPort);
    let checked = 0;
    for (const fam of parse(body, 'prometheus')) {
      const declared = METRIC_LABELS[fam.type === 'counter' ? `${fam.name}_total` : fam.name];
      if (declared === undefined) {
        // Only the app's families are not the sidecar's.
        assert.ok(fam.samples.every((x) => x.labels.source === 'app'), `${fam.name} is not declared in metric-labels.ts`);
        continue;
      }
      for (const x of fam.samples) {
        if (x.labels.source === 'app') continue;
        for (const l of Object.keys(x.labels)) assert.ok(declared.includes(l) || l === 'le' || l === 'quantile', `${x.name}: label ${l} not declared`);
        checked++;
      }
    }
    assert.ok(checked > 50, `${checked} series checked`);
  });

  it('passes promtool check metrics (Prometheus\'s own lint of names, units, suffixes and help)', async () => {
    requireCommand('promtool', 'prometheus');
    app.mode = 'ok';
    const { body } = await scrape(sidecar.adminPort);
    // The sidecar's own series: the test app's names are not ours to lint.
    const own = body.split('\n').filter((l) => !l.includes('source="app"') && !/^# (HELP|TYPE) (app_|x_filler)/.test(l)).join('\n');
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: own, encoding: 'utf8', timeout: 30_000 });
    assert.equal(lint.status, 0, `${lint.stdout}${lint.stderr}`);
    assert.equal(`${lint.stdout}${lint.stderr}`.trim(), '', 'no lint findings');
  });

  it('exports process and runtime health', async () => {
    const { body } = await scrape(sidecar.adminPort);
    for (const name of ['process_cpu_seconds_total', 'process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_open_fds', 'process_max_fds', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_eventloop_utilization_ratio', 'nodejs_eventloop_lag_seconds_count']) {
      const v = value(body, name);
      assert.ok(v !== undefined && Number.isFinite(v) && v >= 0, `${name} = ${v}`);
    }
    assert.ok(value(body, 'process_resident_memory_bytes')! > 10e6);
    assert.ok(value(body, 'process_open_fds')! >= 5, 'listeners, admin, pools hold descriptors');
    assert.ok(Math.abs(value(body, 'process_start_time_seconds')! - Date.now() / 1000) < 600);
    assert.match(body, /^nodejs_eventloop_lag_seconds\{quantile="0\.99"\} [\d.e-]+$/m);
    assert.match(body, /^nodejs_active_handles\{type="TCPServerWrap"\} [1-9]\d*$/m);
    assert.match(body, /^# TYPE nodejs_gc_duration_seconds histogram$/m);
  });

  it('caps per-endpoint series: past max_endpoint_series, endpoints count under endpoint="other"', async () => {
    const { body } = await scrape(sidecar.adminPort);
    const series = body.split('\n').filter((l) => l.startsWith('sidecar_upstream_requests_total{'));
    // Two endpoints of their own (the first two of cluster wide), and "other" of each cluster.
    assert.equal(series.length, 4, series.join('\n'));
    const total = series.reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    assert.equal(total, 8, 'every attempt is counted once');
    assert.equal(value(body, 'sidecar_upstream_requests_total{cluster="narrow",endpoint="other"}'), 2);
    assert.equal(series.filter((l) => l.includes('cluster="wide"') && !l.includes('endpoint="other"')).length, 2);
    assert.equal(value(body, 'sidecar_metrics_endpoints_folded'), 2);
    // Latency and connections follow the same cap.
    const latency = body.split('\n').filter((l) => l.startsWith('sidecar_upstream_request_duration_seconds_count{'));
    assert.equal(latency.length, 4, latency.join('\n'));
    assert.equal(latency.reduce((n, l) => n + Number(l.split(' ').pop()), 0), 8);
    assert.equal(body.split('\n').filter((l) => l.startsWith('sidecar_upstream_connections_active{')).length, 4);
  });

  it('merges the app\'s metrics after its own, labelled source="app", in both formats', async () => {
    app.mode = 'ok';
    const { body } = await scrape(sidecar.adminPort);
    assert.equal(value(body, 'sidecar_app_metrics_scrape_ok'), 1);
    assert.equal(value(body, 'app_orders_total{kind="book",source="app"}'), 42);
    assert.equal(value(body, 'app_queue_seconds_bucket{le="0.5",source="app"}'), 1);
    // The app's process_cpu_seconds_total joins the sidecar's family: one TYPE line, two series.
    assert.equal(body.match(/^# TYPE process_cpu_seconds_total counter$/gm)?.length, 1);
    assert.equal(value(body, 'process_cpu_seconds_total{source="app"}'), 1.25);
    assert.ok(value(body, 'process_cpu_seconds_total')! > 0);
    assert.ok(body.indexOf('app_orders_total') > body.indexOf('sidecar_requests_total'), 'the app comes after the sidecar');
    const om = await scrape(sidecar.adminPort, OPENMETRICS);
    assert.match(om.body, /^# TYPE app_orders counter$/m);
    assert.equal(value(om.body, 'app_orders_total{kind="book",source="app"}'), 42);
    assert.doesNotThrow(() => parse(om.body, 'openmetrics'));
  });

  it('an app that fails, hangs, floods or talks nonsense is left out, and the scrape still answers', async () => {
    for (const mode of ['error', 'slow', 'huge', 'garbage'] as const) {
      app.mode = mode;
      const began = Date.now();
      const { status, body } = await scrape(sidecar.adminPort);
      assert.equal(status, 200, mode);
      assert.equal(value(body, 'sidecar_app_metrics_scrape_ok'), 0, mode);
      assert.doesNotMatch(body, /source="app"/, mode);
      assert.ok(value(body, 'sidecar_requests_total{listener="in",route="route_0",cluster="narrow",status_class="2xx"}') === 2, mode);
      assert.ok(Date.now() - began < 2500, `${mode}: bounded by merge_app.timeout`);
    }
    await app.close();
    const { status, body } = await scrape(sidecar.adminPort);
    assert.equal(status, 200);
    assert.equal(value(body, 'sidecar_app_metrics_scrape_ok'), 0);
    assert.match(sidecar.stderr(), /the app's metrics were left out of this scrape/);
  });
});

describe('/metrics options follow a reload', () => {
  it('process: false leaves the process series out; a reload turns them on and starts merging the app', async () => {
    const app = await startApp();
    const up = await startUpstream((_req, res) => reply(res, 200, 'ok\n'));
    const base = `listeners:\n  - { name: in, port: 0, routes: [{ match: { prefix: / }, cluster: c }] }\nclusters:\n  - { name: c, endpoints: ["${up.address}"] }\n`;
    const sc = await startSidecar(`admin: { port: 0, metrics: { process: false, max_endpoint_series: 0 } }\n${base}`);
    try {
      assert.equal((await httpRequest(sc.ports.in!, { path: '/' })).status, 200);
      let { body } = await scrape(sc.adminPort);
      assert.doesNotMatch(body, /^process_|^nodejs_/m);
      assert.doesNotMatch(body, /^sidecar_upstream_requests_total\{/m, 'max_endpoint_series: 0: no per-endpoint series');
      assert.doesNotMatch(body, /source="app"/);
      assert.equal(app.scrapes, 0);
      sc.writeConfig(`admin: { port: 0, metrics: { merge_app: { url: "http://127.0.0.1:${app.port}/metrics" } } }\n${base}`);
      sc.proc.kill('SIGHUP');
      const end = Date.now() + 10_000;
      while (!/"config reloaded"/.test(sc.stderr())) {
        assert.ok(Date.now() < end, sc.stderr());
        await new Promise((r) => setTimeout(r, 50));
      }
      ({ body } = await scrape(sc.adminPort));
      assert.ok(value(body, 'process_resident_memory_bytes')! > 0);
      assert.equal(value(body, 'app_orders_total{kind="book",source="app"}'), 42);
      assert.equal(value(body, 'sidecar_app_metrics_scrape_ok'), 1);
      assert.equal(app.scrapes, 1);
    } finally {
      await sc.stop();
      await up.close();
      await app.close();
    }
  });
});
