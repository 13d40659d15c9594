// The exposition formats: negotiation, Prometheus text 0.0.4 and OpenMetrics 1.0.0 rendering, parsing either back,
// and merging an app's families under a label.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExpositionError, mergeFamilies, negotiate, parse, render, unitOf, withLabel } from './exposition.js';
import { MetricsRegistry } from './metrics.js';
import { SidecarMetrics } from './catalogue.js';

/** What Prometheus 2.x sends when it scrapes (it prefers OpenMetrics). */
const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

const registry = (): MetricsRegistry => {
  const r = new MetricsRegistry();
  r.counter('x_requests_total', 'Requests "answered"\nby route.').get({ route: 'a\\b "q"' }).inc(3);
  r.gauge('x_temperature_celsius', 'A gauge.').get().set(-1.5);
  const h = r.histogram('x_duration_seconds', 'Latency.', [0.1, 1]);
  h.get({ route: 'a' }).observe(0.05);
  h.get({ route: 'a' }).observe(2);
  r.summary('x_lag_seconds', 'A summary.', () => [[{}, { quantiles: [[0.5, 0.01], [0.99, 0.2]], sum: 1.5, count: 10 }]]);
  return r;
};

describe('content negotiation', () => {
  it('answers OpenMetrics to what Prometheus sends, and text 0.0.4 by default', () => {
    assert.equal(negotiate(PROMETHEUS_ACCEPT), 'openmetrics');
    assert.equal(negotiate('application/openmetrics-text'), 'openmetrics');
    assert.equal(negotiate('application/openmetrics-text; version=1.0.0; charset=utf-8'), 'openmetrics');
    assert.equal(negotiate(undefined), 'prometheus');
    assert.equal(negotiate(''), 'prometheus');
    assert.equal(negotiate('*/*'), 'prometheus');
    assert.equal(negotiate('text/plain;version=0.0.4'), 'prometheus');
    // A scraper that prefers text gets text; an unknown OpenMetrics version is not offered.
    assert.equal(negotiate('text/plain;q=1,application/openmetrics-text;q=0.5'), 'prometheus');
    assert.equal(negotiate('application/openmetrics-text;version=2.0.0'), 'prometheus');
    assert.equal(negotiate('application/openmetrics-text;q=0'), 'prometheus');
  });
});

describe('Prometheus text 0.0.4', () => {
  it('names counters with _total, escapes HELP and label values, cumulates buckets', () => {
    const text = registry().render('prometheus');
    assert.equal(
      text,
      [
        '# HELP x_requests_total Requests "answered"\\nby route.',
        '# TYPE x_requests_total counter',
        'x_requests_total{route="a\\\\b \\"q\\""} 3',
        '# HELP x_temperature_celsius A gauge.',
        '# TYPE x_temperature_celsius gauge',
        'x_temperature_celsius -1.5',
        '# HELP x_duration_seconds Latency.',
        '# TYPE x_duration_seconds histogram',
        'x_duration_seconds_bucket{route="a",le="0.1"} 1',
        'x_duration_seconds_bucket{route="a",le="1"} 1',
        'x_duration_seconds_bucket{route="a",le="+Inf"} 2',
        'x_duration_seconds_sum{route="a"} 2.05',
        'x_duration_seconds_count{route="a"} 2',
        '# HELP x_lag_seconds A summary.',
        '# TYPE x_lag_seconds summary',
        'x_lag_seconds{quantile="0.5"} 0.01',
        'x_lag_seconds{quantile="0.99"} 0.2',
        'x_lag_seconds_sum 1.5',
        'x_lag_seconds_count 10',
        '',
      ].join('\n'),
    );
  });
});

describe('OpenMetrics 1.0.0', () => {
  it('names counter families without _total, adds UNIT, canonical le/quantile floats and # EOF', () => {
    const text = registry().render('openmetrics');
    assert.equal(
      text,
      [
        '# TYPE x_requests counter',
        '# HELP x_requests Requests \\"answered\\"\\nby route.',
        'x_requests_total{route="a\\\\b \\"q\\""} 3',
        '# TYPE x_temperature_celsius gauge',
        '# HELP x_temperature_celsius A gauge.',
        'x_temperature_celsius -1.5',
        '# TYPE x_duration_seconds histogram',
        '# UNIT x_duration_seconds seconds',
        '# HELP x_duration_seconds Latency.',
        'x_duration_seconds_bucket{route="a",le="0.1"} 1',
        'x_duration_seconds_bucket{route="a",le="1.0"} 1',
        'x_duration_seconds_bucket{route="a",le="+Inf"} 2',
        'x_duration_seconds_sum{route="a"} 2.05',
        'x_duration_seconds_count{route="a"} 2',
        '# TYPE x_lag_seconds summary',
        '# UNIT x_lag_seconds seconds',
        '# HELP x_lag_seconds A summary.',
        'x_lag_seconds{quantile="0.5"} 0.01',
        'x_lag_seconds{quantile="0.99"} 0.2',
        'x_lag_seconds_sum 1.5',
        'x_lag_seconds_count 10',
        '# EOF',
        '',
      ].join('\n'),
    );
  });

  it('gives a 0.0.4 counter without _total its _total, and keeps timestamps in seconds', () => {
    const fams = parse('# TYPE legacy counter\nlegacy{a="1"} 5 1700000000123\n', 'prometheus');
    assert.equal(render(fams, 'openmetrics'), '# TYPE legacy counter\nlegacy_total{a="1"} 5 1700000000.123\n# EOF\n');
    assert.equal(render(fams, 'prometheus'), '# TYPE legacy counter\nlegacy{a="1"} 5 1700000000123\n');
  });

  it('units: base units only', () => {
    assert.equal(unitOf('a_seconds'), 'seconds');
    assert.equal(unitOf('a_bytes'), 'bytes');
    assert.equal(unitOf('a_ratio'), 'ratio');
    assert.equal(unitOf('a_requests'), undefined);
  });
});

describe('parsing an exposition', () => {
  it('reads back what it renders, in both formats', () => {
    for (const f of ['prometheus', 'openmetrics'] as const) {
      const fams = registry().families();
      const back = parse(render(fams, f), f);
      assert.equal(render(back, f), render(fams, f), f);
      assert.deepEqual(back.map((x) => [x.name, x.type]), fams.map((x) => [x.name, x.type]), f);
    }
  });

  it('reads what client libraries write: untyped lines, comments, exemplars, _created, special values', () => {
    const om = [
      '# TYPE http_requests counter',
      '# HELP http_requests Requests.',
      'http_requests_total{code="200"} 10 # {trace_id="abc"} 1 1700000000.5',
      'http_requests_created{code="200"} 1700000000',
      '# TYPE up_ratio gauge',
      'up_ratio NaN',
      'up_ratio{x="y"} +Inf',
      '# EOF',
      'ignored_after_eof 1',
    ].join('\n');
    const fams = parse(om, 'openmetrics');
    assert.deepEqual(fams.map((f) => [f.name, f.type, f.samples.length]), [['http_requests', 'counter', 2], ['up_ratio', 'gauge', 2]]);
    assert.ok(Number.isNaN(fams[1]!.samples[0]!.value));
    // 0.0.4 has no _created: it is left out there.
    assert.equal(render(fams, 'prometheus').includes('_created'), false);
    const text = parse('# a comment\nsome_metric 1\nother{a="b",} 2\n', 'prometheus');
    assert.deepEqual(text.map((f) => [f.name, f.type]), [['some_metric', 'unknown'], ['other', 'unknown']]);
    assert.equal(render(text, 'prometheus'), '# TYPE some_metric untyped\nsome_metric 1\n# TYPE other untyped\nother{a="b"} 2\n');
  });

  it('refuses malformed input with the line number', () => {
    for (const bad of ['1bad 1', 'ok{a="1} 2', 'ok{a=1} 2', 'ok 1 2 3', 'ok one', '# TYPE ok weird', 'ok{a="1",a="2"} 1']) {
      assert.throws(() => parse(`fine 1\n${bad}\n`, 'prometheus'), (e: unknown) => e instanceof ExpositionError && /line 2/.test(e.message), bad);
    }
  });
});

describe('merging the app', () => {
  const app = parse(
    ['# HELP process_cpu_seconds_total CPU.', '# TYPE process_cpu_seconds_total counter', 'process_cpu_seconds_total 4', '# TYPE app_orders_total counter', 'app_orders_total{source="web"} 7', '# TYPE x_temperature_celsius counter', 'x_temperature_celsius_total 1'].join('\n'),
    'prometheus',
  );

  it('labels every app series, moving a clashing label aside', () => {
    const labelled = withLabel(app, 'source', 'app');
    assert.deepEqual(labelled[1]!.samples[0]!.labels, { exported_source: 'web', source: 'app' });
  });

  it('joins a family the sidecar also exports (one TYPE line), appends the others, leaves out a type clash', () => {
    const own = registry();
    own.counter('process_cpu_seconds_total', 'CPU of the sidecar.').get().inc(2);
    const { families, dropped } = mergeFamilies(own.families(), withLabel(app, 'source', 'app'));
    assert.equal(dropped, 1); // x_temperature_celsius is a gauge here, a counter there
    const text = render(families, 'prometheus');
    assert.equal(text.match(/# TYPE process_cpu_seconds_total/g)?.length, 1);
    assert.match(text, /process_cpu_seconds_total 2\nprocess_cpu_seconds_total\{source="app"\} 4\n/);
    assert.match(text, /# TYPE app_orders_total counter\napp_orders_total\{exported_source="web",source="app"\} 7\n$/);
    assert.doesNotMatch(text, /x_temperature_celsius_total/);
    // The OpenMetrics rendering parses back: no duplicate families.
    assert.doesNotThrow(() => parse(render(families, 'openmetrics'), 'openmetrics'));
  });
});

describe('the catalogue follows Prometheus naming', () => {
  it('counters end in _total; durations are _seconds, sizes _bytes; no other time or size units', () => {
    const all = new SidecarMetrics().registry.describe();
    assert.ok(all.length > 60);
    for (const f of all) {
      assert.match(f.name, /^[a-z_][a-z0-9_]*$/, f.name);
      if (f.kind === 'counter') assert.match(f.name, /_total$/, f.name);
      else assert.doesNotMatch(f.name, /_total$/, `${f.name}: only counters end in _total`);
      assert.doesNotMatch(f.name, /_(ms|milliseconds|microseconds|us|kb|kib|mb|mib|minutes|hours|percent)(_|$)/, f.name);
      assert.ok(f.help.length > 10, `${f.name} has help`);
    }
  });
});
