// The batch exporter on a fake clock and transport: batches by size and interval, one export at a time, a bounded
// queue, and every span either exported or counted as dropped with its reason.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter } from '../../observability/metrics.js';
import { FakeClock } from '../../policies/testing.js';
import { BatchExporter, ExportFailure, type DropReason, type ExportTransport } from './exporter.js';
import type { SpanRecord } from './span.js';

const span = (i: number): SpanRecord => ({
  traceId: 't'.repeat(32),
  spanId: String(i).padStart(16, '0'),
  parentSpanId: undefined,
  parentRemote: false,
  traceState: undefined,
  kind: 1,
  name: `s${i}`,
  start: 0,
  end: 1,
  attributes: {},
  error: false,
  message: undefined,
});

function setup(opts: { maxQueue?: number; maxBatch?: number; flushInterval?: number }, send: ExportTransport) {
  const clock = new FakeClock();
  const exported = new Counter();
  const dropped = new Map<DropReason, Counter>();
  const counters = { exported, dropped: (r: DropReason) => dropped.get(r) ?? dropped.set(r, new Counter()).get(r)! };
  // The encoder stands in for the OTLP serializer: the span names, so the test sees what went in each batch.
  const encoder = async () => (spans: readonly SpanRecord[]) => new TextEncoder().encode(spans.map((s) => s.name).join(','));
  const e = new BatchExporter({ maxQueue: opts.maxQueue ?? 100, maxBatch: opts.maxBatch ?? 10, flushInterval: opts.flushInterval ?? 1000 }, send, encoder, counters, (fn, ms) => clock.setTimeout(fn, ms));
  const droppedCount = (r: DropReason): number => dropped.get(r)?.value ?? 0;
  return { clock, e, exported, droppedCount };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('BatchExporter', () => {
  it('sends what waited flush_interval after the first span, as one batch', async () => {
    const batches: string[] = [];
    const { clock, e, exported } = setup({}, async (b) => void batches.push(new TextDecoder().decode(b)));
    e.add(span(1));
    clock.advance(500);
    e.add(span(2));
    await settle();
    assert.deepEqual(batches, []);
    clock.advance(500);
    await settle();
    await settle();
    assert.deepEqual(batches, ['s1,s2']);
    assert.equal(exported.value, 2);
    assert.equal(clock.pending(), 0);
  });

  it('a full batch goes at once, and one export at a time: what came meanwhile follows in batches of max_batch', async () => {
    const batches: string[] = [];
    let release: () => void = () => {};
    const { e, exported } = setup({ maxBatch: 2 }, (b) => {
      batches.push(new TextDecoder().decode(b));
      return new Promise<void>((r) => (release = r));
    });
    e.add(span(1));
    e.add(span(2));
    await settle();
    assert.deepEqual(batches, ['s1,s2']);
    for (const i of [3, 4, 5]) e.add(span(i));
    await settle();
    assert.equal(batches.length, 1, 'the second export waits for the first');
    release();
    await settle();
    await settle();
    assert.deepEqual(batches, ['s1,s2', 's3,s4']);
    release();
    const done = e.flush();
    await settle();
    await settle();
    release();
    await done;
    assert.deepEqual(batches, ['s1,s2', 's3,s4', 's5']);
    assert.equal(exported.value, 5);
  });

  it('past max_queue new spans are dropped and counted; a failed export counts its batch by reason', async () => {
    let fail: DropReason | undefined = 'unreachable';
    // The first export hangs until released; later ones answer at once.
    let release: () => void = () => {};
    const hanging = new Promise<void>((r) => (release = r));
    let calls = 0;
    const { e, exported, droppedCount } = setup({ maxQueue: 3, maxBatch: 3 }, async () => {
      if (calls++ === 0) await hanging;
      if (fail) throw new ExportFailure(fail, 'down');
    });
    // add() never waits for the collector: these return at once while the first batch hangs.
    for (const i of [1, 2, 3]) e.add(span(i)); // a full batch: in flight
    for (const i of [4, 5, 6]) e.add(span(i)); // queued
    e.add(span(7)); // over max_queue
    assert.equal(droppedCount('queue_full'), 1);
    assert.equal(e.queued, 3);
    release();
    await e.flush();
    assert.equal(droppedCount('unreachable'), 6);
    fail = 'timeout';
    e.add(span(8));
    await e.flush();
    assert.equal(droppedCount('timeout'), 1);
    fail = undefined;
    e.add(span(9));
    await e.flush();
    assert.equal(exported.value, 1);
  });

  it('an encoder that fails to load counts its batch as encoding and is tried again next time', async () => {
    let loads = 0;
    const clock = new FakeClock();
    const exported = new Counter();
    const enc = new Counter();
    const e = new BatchExporter(
      { maxQueue: 10, maxBatch: 1, flushInterval: 10 },
      async () => {},
      async () => {
        if (loads++ === 0) throw new Error('no module');
        return () => new Uint8Array(1);
      },
      { exported, dropped: () => enc },
      (fn, ms) => clock.setTimeout(fn, ms),
    );
    e.add(span(1));
    await e.flush();
    e.add(span(2));
    await e.flush();
    assert.equal(enc.value, 1);
    assert.equal(exported.value, 1);
  });
});
