// Process and runtime series: read at scrape time, off until started, and what they read moves with the process.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MetricsRegistry } from './metrics.js';
import { maxFds, ProcessMetrics } from './process-metrics.js';

const sample = (r: MetricsRegistry, name: string, labels: Record<string, string> = {}): number | undefined => {
  for (const f of r.families()) {
    for (const s of f.samples) if (s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels)) return s.value;
  }
  return undefined;
};

/** Keeps the event loop busy for `ms`. */
const block = (ms: number): void => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

describe('process metrics', () => {
  it('reads the soft open-files limit', () => {
    const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n';
    assert.equal(maxFds(limits), 1024);
    assert.equal(maxFds('Max open files            unlimited            unlimited            files\n'), Infinity);
    assert.equal(maxFds('nothing here'), undefined);
  });

  it('exports nothing until started, and stops cleanly', () => {
    const r = new MetricsRegistry();
    const p = new ProcessMetrics(r);
    assert.equal(sample(r, 'process_resident_memory_bytes'), undefined);
    p.start();
    assert.ok(sample(r, 'process_resident_memory_bytes')! > 1e6);
    p.stop();
    assert.equal(sample(r, 'process_cpu_seconds_total'), undefined);
  });

  it('CPU, memory, descriptors, handles, heap: plausible and moving', async () => {
    const r = new MetricsRegistry();
    const p = new ProcessMetrics(r);
    p.start();
    try {
      const cpu0 = sample(r, 'process_cpu_seconds_total')!;
      block(60);
      const cpu1 = sample(r, 'process_cpu_seconds_total')!;
      assert.ok(cpu1 - cpu0 >= 0.03, `cpu ${cpu0} -> ${cpu1}`);
      assert.ok(Math.abs(cpu1 - sample(r, 'process_cpu_user_seconds_total')! - sample(r, 'process_cpu_system_seconds_total')!) < 0.01);
      assert.ok(sample(r, 'process_open_fds')! >= 3);
      assert.ok(sample(r, 'process_max_fds')! >= sample(r, 'process_open_fds')!);
      const start = sample(r, 'process_start_time_seconds')!;
      assert.ok(start <= Date.now() / 1000 && start > Date.now() / 1000 - process.uptime() - 2, `start ${start}`);
      assert.ok(sample(r, 'nodejs_heap_size_used_bytes')! <= sample(r, 'nodejs_heap_size_total_bytes')!);
      const timer = setInterval(() => {}, 1000);
      assert.ok(sample(r, 'nodejs_active_handles', { type: 'Timeout' })! >= 1);
      clearInterval(timer);
    } finally {
      p.stop();
    }
  });

  it('event-loop lag and utilisation see a blocked loop; GC pauses land in the histogram by kind', async () => {
    const r = new MetricsRegistry();
    const p = new ProcessMetrics(r);
    p.start();
    try {
      await new Promise((res) => setTimeout(res, 150));
      sample(r, 'nodejs_eventloop_lag_seconds_count'); // a first read starts a new window
      for (let i = 0; i < 3; i++) {
        block(80);
        await new Promise((res) => setTimeout(res, 30));
      }
      // Garbage for the young generation: minor GCs.
      let keep = 0;
      for (let i = 0; i < 300_000; i++) keep += { i, s: `x${i}` }.s.length;
      assert.ok(keep > 0);
      await new Promise((res) => setTimeout(res, 50));
      const fams = r.families();
      const lag = fams.find((f) => f.name === 'nodejs_eventloop_lag_seconds')!;
      const max = sample(r, 'nodejs_eventloop_lag_max_seconds')!;
      assert.ok(lag.samples.length === 5, JSON.stringify(lag.samples));
      assert.ok(max >= 0.05 && max < 1, `max lag ${max}`);
      const util = sample(r, 'nodejs_eventloop_utilization_ratio')!;
      assert.ok(util > 0.3 && util <= 1, `utilization ${util}`);
      const gc = fams.find((f) => f.name === 'nodejs_gc_duration_seconds')!;
      const counts = gc.samples.filter((s) => s.name === 'nodejs_gc_duration_seconds_count');
      assert.ok(counts.length >= 1 && counts.some((s) => s.value > 0), JSON.stringify(counts));
      for (const s of counts) assert.match(s.labels.kind!, /^(minor|major|incremental|weakcb|other)$/);
    } finally {
      p.stop();
    }
  });
});
