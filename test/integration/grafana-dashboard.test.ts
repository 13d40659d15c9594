// deploy/grafana/sidecar-dashboard.json: well formed, and every metric name in every panel expression and variable
// query is a series the sidecar exports, per the catalogue and per a real scrape of a running sidecar.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { dashboard, dashboardExpressions } from '../helpers/grafana.js';
import { promqlMetricNames } from '../helpers/promql.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { allFamilies } from '../../src/observability/metric-docs.js';
import { sampleNames } from '../../src/observability/metric-labels.js';

/** Sample names a scrape's text has a TYPE for (a family with no samples yet still has its TYPE line). */
function scrapedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) for (const n of sampleNames({ name: m[1]!, kind: m[2] as 'counter' })) names.add(n);
  }
  return names;
}

describe('the Grafana dashboard', () => {
  let sidecar: RunningSidecar;
  let up: TestUpstream;

  before(async () => {
    up = await startUpstream((_req, res) => reply(res, 200, 'ok\n'));
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - { match: { prefix: / }, cluster: app }
clusters:
  - { name: app, endpoints: ["${up.address}"] }
`);
    assert.equal((await httpRequest(sidecar.ports.in!, { path: '/' })).status, 200);
  });

  after(async () => {
    await sidecar.stop();
    await up.close();
  });

  it('is an importable dashboard: unique panel ids, a uid, a Prometheus datasource input, targets on every panel', () => {
    assert.equal(dashboard.uid, 'sidecar-overview');
    const ids = new Set<number>();
    let panels = 0;
    for (const p of dashboard.panels) {
      assert.ok(!ids.has(p.id), `panel id ${p.id} twice`);
      ids.add(p.id);
      if (p.type === 'row') continue;
      panels++;
      assert.ok((p.targets ?? []).length > 0, `panel "${p.title}" has no query`);
    }
    assert.ok(panels >= 20, `${panels} panels`);
    const titles = dashboard.panels.map((p) => p.title).join('\n');
    for (const want of [/Requests per second/, /Error ratio/, /p50 \/ p90 \/ p99, by route/, /p50 \/ p90 \/ p99, by cluster/, /Retries/, /ejections/, /Circuit breakers/, /Memory/, /CPU/]) assert.match(titles, want);
  });

  it('refers only to series the sidecar exports (catalogue and a real scrape)', async () => {
    const catalogue = new Set(allFamilies().flatMap(sampleNames));
    const scraped = scrapedNames((await httpRequest(sidecar.adminPort, { path: '/metrics' })).body);
    const exprs = dashboardExpressions();
    assert.ok(exprs.length >= 40, `${exprs.length} expressions`);
    const used = new Set<string>();
    for (const { where, expr } of exprs) {
      const names = promqlMetricNames(expr);
      assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
      for (const n of names) {
        used.add(n);
        assert.ok(catalogue.has(n), `${where}: ${n} is not in the catalogue (${expr})`);
        assert.ok(scraped.has(n), `${where}: ${n} is not in a real scrape (${expr})`);
      }
    }
    for (const want of ['sidecar_requests_total', 'sidecar_request_duration_seconds_bucket', 'sidecar_retries_total', 'sidecar_outlier_ejections_total', 'sidecar_circuit_breaker_at_capacity', 'sidecar_upstream_request_duration_seconds_bucket', 'process_resident_memory_bytes', 'process_cpu_seconds_total']) {
      assert.ok(used.has(want), `the dashboard shows ${want}`);
    }
  });

  it('the PromQL name reader ignores functions, keywords, labels, strings and durations', () => {
    assert.deepEqual(
      promqlMetricNames('histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{x=~"b|c", y!="rate(d)"}[5m] offset 1h))) / on(route) group_left(z) b_total > bool 1e3'),
      ['a_bucket', 'b_total'],
    );
  });
});
