// A real Prometheus (Debian prometheus) scrapes a sidecar's admin /metrics every second (it negotiates OpenMetrics);
// after a known number of requests its query API has the count, a histogram quantile, the merged app series, and
// every Grafana dashboard expression evaluates.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startPrometheus, type TestPrometheus } from '../helpers/prometheus.js';
import { expandGrafanaVariables } from '../helpers/promql.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { dashboardExpressions } from '../helpers/grafana.js';

const REQUESTS = 37;
const FAILURES = 5;

describe('a real Prometheus scraping the sidecar', () => {
  let prom: TestPrometheus;
  let sidecar: RunningSidecar;
  let up: TestUpstream;
  let app: http.Server;
  let relay: http.Server;
  /** The Accept header of Prometheus's scrapes, and the content-type the sidecar answered. */
  const seen: Array<{ accept: string; type: string }> = [];

  before(async () => {
    // ~20 ms per request: the quantile has a known neighbourhood.
    up = await startUpstream((req, res) => setTimeout(() => reply(res, req.url === '/fail' ? 503 : 200, 'ok\n'), 20));
    app = http.createServer((_req, res) => reply(res, 200, '# TYPE shop_orders_total counter\nshop_orders_total 9\n', { 'content-type': 'text/plain; version=0.0.4' }));
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    sidecar = await startSidecar(`
admin:
  port: 0
  metrics:
    merge_app: { url: "http://127.0.0.1:${(app.address() as AddressInfo).port}/metrics" }
listeners:
  - name: in
    port: 0
    routes:
      - { name: api, match: { prefix: / }, cluster: backend }
clusters:
  - { name: backend, endpoints: ["${up.address}"] }
`);
    // Prometheus scrapes through a recording hop: the test sees what it asked for and what it got.
    relay = http.createServer((req, res) => {
      const fwd = http.get({ host: '127.0.0.1', port: sidecar.adminPort, path: req.url, headers: req.headers }, (r) => {
        seen.push({ accept: String(req.headers.accept), type: String(r.headers['content-type']) });
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      fwd.on('error', () => res.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    prom = await startPrometheus([{ job: 'sidecar', targets: [`127.0.0.1:${(relay.address() as AddressInfo).port}`] }]);
  });

  after(async () => {
    await prom?.stop();
    await sidecar?.stop();
    await up?.close();
    await new Promise((r) => app?.close(r));
    relay?.closeAllConnections();
    await new Promise((r) => relay?.close(r));
  });

  it('sees the target up, then the request count and a latency quantile after a known number of requests', async () => {
    await prom.waitFor('up{job="sidecar"}', (s) => s.length === 1 && s[0]!.value === 1);
    // A first scrape before the traffic, so rate() sees the increase.
    await prom.waitFor('count(sidecar_requests_active{job="sidecar"})', (s) => s.length === 1 && s[0]!.value >= 1);
    for (let i = 0; i < REQUESTS; i++) assert.equal((await httpRequest(sidecar.ports.in!, { path: `/ok/${i}` })).status, 200);
    for (let i = 0; i < FAILURES; i++) assert.equal((await httpRequest(sidecar.ports.in!, { path: '/fail' })).status, 503);

    const ok = await prom.waitFor('sidecar_requests_total{job="sidecar",listener="in",route="api",cluster="backend",status_class="2xx"}', (s) => s[0]?.value === REQUESTS);
    assert.equal(ok.length, 1);
    await prom.waitFor('sum(sidecar_requests_total{route="api",status_class="5xx"})', (s) => s[0]?.value === FAILURES);
    await prom.waitFor('sum(sidecar_upstream_requests_total{cluster="backend"})', (s) => s[0]?.value === REQUESTS + FAILURES);
    const count = await prom.waitFor('sidecar_request_duration_seconds_count{route="api"}', (s) => s[0]?.value === REQUESTS + FAILURES);
    assert.equal(count.length, 1);

    // The quantile over the rate, as the Grafana panels compute it: every request took about 20 ms.
    const p90 = await prom.waitFor('histogram_quantile(0.9, sum by (le) (rate(sidecar_request_duration_seconds_bucket{route="api"}[1m])))', (s) => s.length === 1 && Number.isFinite(s[0]!.value));
    assert.ok(p90[0]!.value > 0.01 && p90[0]!.value <= 0.1, `p90 ${p90[0]!.value} s`);
    const p50 = await prom.query('histogram_quantile(0.5, sum by (le) (sidecar_request_duration_seconds_bucket{route="api"}))');
    assert.ok(p50[0]!.value > 0.01 && p50[0]!.value <= 0.05, `p50 ${p50[0]!.value} s`);
    // The error ratio.
    const ratio = await prom.query('sum(sidecar_requests_total{route="api",status_class="5xx"}) / sum(sidecar_requests_total{route="api"})');
    assert.ok(Math.abs(ratio[0]!.value - FAILURES / (REQUESTS + FAILURES)) < 1e-9);
  });

  it('ingests process series and the merged app series (labelled source="app")', async () => {
    const rss = await prom.waitFor('process_resident_memory_bytes{job="sidecar"}', (s) => s.length === 1);
    assert.ok(rss[0]!.value > 10e6);
    await prom.waitFor('rate(process_cpu_seconds_total{job="sidecar",source!="app"}[10s])', (s) => s.length === 1 && s[0]!.value >= 0);
    const shop = await prom.waitFor('shop_orders_total{job="sidecar",source="app"}', (s) => s.length === 1);
    assert.equal(shop[0]!.value, 9);
    await prom.waitFor('sidecar_app_metrics_scrape_ok', (s) => s[0]?.value === 1);
    // Prometheus asked for OpenMetrics first and got it.
    assert.ok(seen.length >= 2);
    assert.match(seen[0]!.accept, /^application\/openmetrics-text/);
    assert.ok(seen.every((x) => x.type === 'application/openmetrics-text; version=1.0.0; charset=utf-8'), JSON.stringify(seen.slice(0, 2)));
    const samples = await prom.query('scrape_samples_scraped{job="sidecar"}');
    assert.ok(samples[0]!.value > 100, `${samples[0]?.value} samples`);
  });

  it('evaluates every expression of the Grafana dashboard', async () => {
    const exprs = dashboardExpressions();
    const empty: string[] = [];
    for (const { where, expr } of exprs) {
      const q = expandGrafanaVariables(expr);
      // query() throws on a PromQL error: each expression must at least parse and evaluate.
      const result = await prom.query(q).catch((err: Error) => assert.fail(`${where}: ${err.message}`));
      if (result.length === 0) empty.push(where);
    }
    // The traffic panels have data after the requests above.
    for (const must of ['Requests per second, by route', 'Latency p50 / p90 / p99, by route', 'Attempts per second, by endpoint', 'Memory', 'CPU']) {
      assert.ok(!empty.some((w) => w.startsWith(`panel "${must}" A`)), `panel "${must}" is empty in Prometheus`);
    }
  });
});
