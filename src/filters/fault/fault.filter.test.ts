// Fault decisions: percentages with an injected random source, header control, and the layer's answers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { faultPolicy } from '../../config/schema.js';
import { Cancellation } from '../../core/cancel.js';
import { ProxyError } from '../../core/errors.js';
import { HeaderList } from '../../core/headers.js';
import type { ProxyRequest } from '../../core/service.js';
import { Counter } from '../../observability/metrics.js';
import { decideFault, faultLayer } from './fault.filter.js';

const none = (): undefined => undefined;
const seq = (...values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length]!;
};

describe('decideFault', () => {
  it('applies delay and abort by percent', () => {
    const cfg = faultPolicy.parse({ delay: { duration: 100, percent: 30 }, abort: { status: 503, percent: 10 } });
    assert.deepEqual(decideFault(cfg, none, seq(0.29, 0.09)), { delayMs: 100, abortStatus: 503 });
    assert.deepEqual(decideFault(cfg, none, seq(0.3, 0.1)), { delayMs: 0, abortStatus: undefined });
  });

  it('0% never and 100% always, whatever the random source says', () => {
    const cfg = faultPolicy.parse({ delay: { duration: 5, percent: 0 }, abort: { status: 500 } });
    assert.deepEqual(decideFault(cfg, none, () => 0), { delayMs: 0, abortStatus: 500 });
    assert.deepEqual(decideFault(cfg, none, () => 0.999), { delayMs: 0, abortStatus: 500 });
  });

  it('header control reads the delay and abort headers, ignoring malformed values', () => {
    const cfg = faultPolicy.parse({ header_control: true });
    const h = (m: Record<string, string>) => (n: string) => m[n];
    assert.deepEqual(decideFault(cfg, h({ 'x-sidecar-fault-delay-ms': '250', 'x-sidecar-fault-abort': '502' }), Math.random), { delayMs: 250, abortStatus: 502 });
    assert.deepEqual(decideFault(cfg, h({ 'x-sidecar-fault-delay-ms': 'soon', 'x-sidecar-fault-abort': '99' }), Math.random), { delayMs: 0, abortStatus: undefined });
    assert.deepEqual(decideFault(cfg, h({ 'x-sidecar-fault-delay-ms': '999999999' }), Math.random).delayMs, 60_000);
    assert.deepEqual(decideFault(cfg, h({ 'x-sidecar-fault-delay-ms': '99999999999999999999' }), Math.random).delayMs, 60_000);
    const off = faultPolicy.parse({ abort: { status: 500, percent: 0 } });
    assert.deepEqual(decideFault(off, h({ 'x-sidecar-fault-abort': '502' }), Math.random), { delayMs: 0, abortStatus: undefined });
  });

  it('the schema wants at least one of delay, abort, header_control', () => {
    assert.equal(faultPolicy.safeParse({}).success, false);
    assert.equal(faultPolicy.safeParse({ abort: { status: 700 } }).success, false);
  });
});

describe('faultLayer', () => {
  const req = (headers: string[] = []): ProxyRequest =>
    ({ method: 'GET', authority: 'a', path: '/', scheme: 'http', headers: new HeaderList(headers), body: null, contentLength: 0, cancel: new Cancellation(), context: {} }) as unknown as ProxyRequest;

  it('is absent without a fault block', () => {
    const next = async () => ({ status: 200, headers: new HeaderList(), body: null });
    assert.equal(faultLayer(undefined, () => assert.fail('counters resolved'))(next), next);
  });

  it('aborts with the status and flag FI, counting it, without calling next', async () => {
    const counters = { delay: new Counter(), abort: new Counter() };
    const svc = faultLayer(faultPolicy.parse({ abort: { status: 418 } }), () => counters)(() => assert.fail('forwarded'));
    await assert.rejects(svc(req()), (e: ProxyError) => e.flag === 'FI' && e.status === 418);
    assert.equal(counters.abort.value, 1);
  });

  it('strips the control headers before forwarding', async () => {
    const counters = { delay: new Counter(), abort: new Counter() };
    const r = req(['x-sidecar-fault-delay-ms', '1', 'x-other', 'y']);
    const svc = faultLayer(faultPolicy.parse({ header_control: true }), () => counters)(async (q) => {
      assert.equal(q.headers.get('x-sidecar-fault-delay-ms'), undefined);
      assert.equal(q.headers.get('x-other'), 'y');
      return { status: 200, headers: new HeaderList(), body: null };
    });
    assert.equal((await svc(r)).status, 200);
    assert.equal(counters.delay.value, 1);
  });
});
