// Per-endpoint series: a cap across clusters, "other" past it, slots kept across snapshots, counters never going back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EndpointSeries } from './endpoint-metrics.js';

const counters = (requests: number, failures = 0, active = 0) => ({ requests, failures, active });

describe('per-endpoint series', () => {
  it('gives the first max endpoints their own series, folds the rest into endpoint="other" per cluster', () => {
    const s = new EndpointSeries(2);
    const a = s.acquire('c1', '10.0.0.1:80', counters(5, 1, 1), () => 2);
    s.acquire('c1', '10.0.0.2:80', counters(7), () => 1);
    const c = s.acquire('c1', '10.0.0.3:80', counters(11, 2), () => 3);
    const d = s.acquire('c2', '10.0.1.1:80', counters(13), () => 4);
    assert.equal(s.folded, 2);
    assert.deepEqual(s.collect('requests'), [
      [{ cluster: 'c1', endpoint: '10.0.0.1:80' }, 5],
      [{ cluster: 'c1', endpoint: '10.0.0.2:80' }, 7],
      [{ cluster: 'c1', endpoint: 'other' }, 11],
      [{ cluster: 'c2', endpoint: 'other' }, 13],
    ]);
    assert.deepEqual(s.collect('connections').map(([l, n]) => `${l.cluster}/${l.endpoint}=${n}`), ['c1/10.0.0.1:80=2', 'c1/10.0.0.2:80=1', 'c1/other=3', 'c2/other=4']);
    // Folded endpoints of one cluster share one latency histogram.
    assert.notEqual(a.latency, c.latency);
    a.latency!.observe(0.01);
    c.latency!.observe(0.2);
    d.latency!.observe(0.3);
    const hist = [...s.histograms()].map(([l, h]) => `${l.cluster}/${l.endpoint}:${h.count}`);
    assert.deepEqual(hist, ['c1/10.0.0.1:80:1', 'c1/10.0.0.2:80:0', 'c1/other:1', 'c2/other:1']);
    // The dashboard's upstream rate counts every attempt, own series and folded alike.
    assert.equal(s.totalRequests(), 5 + 7 + 11 + 13);
  });

  it('keeps a slot while any snapshot holds the endpoint, frees it after, and "other" counters never go back', () => {
    const s = new EndpointSeries(1);
    const old = s.acquire('c', 'a:1', counters(3), () => 0);
    const next = s.acquire('c', 'a:1', counters(3), () => 0); // a reload: the same endpoint again
    const folded = s.acquire('c', 'b:1', counters(4, 1), () => 0);
    old.release();
    assert.equal(s.collect('requests')[0]![0].endpoint, 'a:1');
    folded.release(); // b goes away: its count stays under "other"
    assert.deepEqual(s.collect('requests'), [[{ cluster: 'c', endpoint: 'other' }, 4], [{ cluster: 'c', endpoint: 'a:1' }, 3]]);
    assert.deepEqual(s.collect('failures'), [[{ cluster: 'c', endpoint: 'other' }, 1], [{ cluster: 'c', endpoint: 'a:1' }, 0]]);
    next.release();
    // The slot is free again: a new endpoint gets its own series.
    const e = s.acquire('c', 'e:1', counters(1), () => 0);
    assert.equal(s.folded, 0);
    assert.ok(s.collect('requests').some(([l]) => l.endpoint === 'e:1'));
    e.release();
  });

  it('0: no series and no timing', () => {
    const s = new EndpointSeries(0);
    assert.equal(s.acquire('c', 'a:1', counters(1), () => 0).latency, undefined);
    assert.deepEqual(s.collect('requests'), []);
    assert.equal(s.totalRequests(), undefined); // not counted: the dashboard estimates instead
  });
});
