// Hedge layer against a scripted "cluster" on a fake clock: when a hedge is sent, which answer wins, that the loser is
// cancelled, budget accounting, and that non-idempotent or body-carrying requests are never hedged.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { hedgePolicy } from '../../config/schema.js';
import { ProxyError } from '../../core/errors.js';
import { HeaderList } from '../../core/headers.js';
import type { ProxyRequest, ProxyResponse } from '../../core/service.js';
import { Counter } from '../../observability/metrics.js';
import type { AttemptRequest } from '../../cluster/cluster.js';
import { WindowedHistogram } from '../latency/histogram.js';
import { RetryBudget } from '../retry/budget.js';
import { FakeClock, testRequest } from '../testing.js';
import { HEDGE_FALLBACK_MS, hedgeDelay, hedgeLayer, hedgeable, type HedgeMetrics, type HedgeTarget } from './hedge.layer.js';

const request = (method = 'GET', body: Readable | null = null): ProxyRequest => testRequest({ method, body });

interface Call {
  req: AttemptRequest;
  endpoint: string;
  resolve(res: ProxyResponse): void;
  reject(err: unknown): void;
}

/** A cluster whose attempts stay pending until the test settles them; round robin over a and b honouring avoid. */
function scripted(): { service: (req: ProxyRequest) => Promise<ProxyResponse>; calls: Call[] } {
  const calls: Call[] = [];
  let rr = 0;
  const service = (r: ProxyRequest): Promise<ProxyResponse> => {
    const req = r as AttemptRequest;
    let endpoint = rr++ % 2 === 0 ? 'a:1' : 'b:1';
    if (req.avoid?.address === endpoint) endpoint = endpoint === 'a:1' ? 'b:1' : 'a:1';
    req.context.endpoint = endpoint;
    req.context.attempts++;
    return new Promise((resolve, reject) => {
      calls.push({ req, endpoint, resolve, reject });
      req.cancel.onAbort(reject);
    });
  };
  return { service, calls };
}

function setup(after: string | number = 50, budget?: RetryBudget) {
  const clock = new FakeClock(1000);
  const target: HedgeTarget = {
    name: 'c1',
    retryBudget: budget ?? new RetryBudget({ retryRatio: 1, minRetriesPerSecond: 10, ttlMs: 1000 }, clock),
    endpoints: [1, 2],
    endpointByAddress: (address) => ({ address, weight: 1, active: 0, available: true }),
  };
  const metrics: HedgeMetrics = { sent: new Counter(), won: new Counter(), lost: new Counter(), budget: new Counter() };
  const histogram = new WindowedHistogram(30_000, clock);
  const { service, calls } = scripted();
  const svc = hedgeLayer(hedgePolicy.parse({ after }), target, metrics, { histogram, deposit: true, clock })(service);
  return { clock, metrics, calls, svc, histogram };
}

const response = (text: string): ProxyResponse => ({ status: 200, headers: new HeaderList([]), body: Readable.from([Buffer.from(text)]) });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('hedge layer', () => {
  it('hedgeable: idempotent methods without a body only', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']) assert.equal(hedgeable(m, false), true, m);
    assert.equal(hedgeable('POST', false), false);
    assert.equal(hedgeable('PATCH', false), false);
    assert.equal(hedgeable('PUT', true), false);
  });

  it('hedgeDelay: a fixed duration, or p95 once the histogram has enough samples', () => {
    const clock = new FakeClock();
    const h = new WindowedHistogram(30_000, clock);
    assert.equal(hedgeDelay(120, h), 120);
    assert.equal(hedgeDelay('p95', h), HEDGE_FALLBACK_MS);
    for (let i = 1; i <= 100; i++) h.record(i);
    const d = hedgeDelay('p95', h);
    assert.ok(d > 90 && d < 100, `p95 ${d}`);
  });

  it('sends a hedge to another endpoint after the delay; the first head wins and the loser is cancelled', async () => {
    const { clock, metrics, calls, svc } = setup(50);
    const req = request();
    const p = svc(req);
    assert.equal(calls.length, 1);
    clock.advance(49);
    assert.equal(calls.length, 1);
    clock.advance(1);
    assert.equal(calls.length, 2);
    assert.notEqual(calls[1]!.endpoint, calls[0]!.endpoint);
    assert.equal(metrics.sent.value, 1);
    calls[1]!.resolve(response('hedge'));
    const res = await p;
    assert.equal(res.status, 200);
    assert.equal(calls[0]!.req.cancel.aborted, true, 'the losing attempt was not cancelled');
    assert.equal(calls[1]!.req.cancel.aborted, false);
    assert.equal(req.cancel.aborted, false);
    assert.equal(req.context.endpoint, calls[1]!.endpoint);
    assert.equal(metrics.won.value, 1);
    assert.equal(metrics.lost.value, 0);
  });

  it('the first attempt can still win after the hedge was sent (counted lost)', async () => {
    const { clock, metrics, calls, svc } = setup(50);
    const p = svc(request());
    clock.advance(50);
    calls[0]!.resolve(response('first'));
    await p;
    assert.equal(calls[1]!.req.cancel.aborted, true);
    assert.equal(metrics.lost.value, 1);
    assert.equal(metrics.won.value, 0);
  });

  it('a fast answer sends no hedge and records its latency', async () => {
    const { clock, metrics, calls, svc, histogram } = setup('p95');
    const p = svc(request());
    clock.advance(10);
    calls[0]!.resolve(response('ok'));
    await p;
    clock.advance(1000);
    assert.equal(calls.length, 1);
    assert.equal(metrics.sent.value, 0);
    assert.equal(histogram.count, 1);
  });

  it('when one attempt fails the other may still answer; both failing rejects', async () => {
    const { clock, calls, svc } = setup(50);
    const p = svc(request());
    clock.advance(50);
    calls[0]!.reject(new ProxyError('UC', 'closed'));
    await tick();
    calls[1]!.resolve(response('hedge'));
    assert.equal((await p).status, 200);

    const q = svc(request());
    clock.advance(50);
    calls[2]!.reject(new ProxyError('UC', 'closed'));
    calls[3]!.reject(new ProxyError('UR', 'reset'));
    await assert.rejects(q, /reset|closed/);
  });

  it('a POST or a request with a body is never hedged', async () => {
    const { clock, calls, svc } = setup(50);
    const p = svc(request('POST'));
    const q = svc(request('PUT', Readable.from([Buffer.from('x')])));
    clock.advance(500);
    assert.equal(calls.length, 2);
    calls[0]!.resolve(response('a'));
    calls[1]!.resolve(response('b'));
    await Promise.all([p, q]);
  });

  it('no hedge when the retry budget is empty (counted budget)', async () => {
    const clock = new FakeClock();
    const empty = new RetryBudget({ retryRatio: 0, minRetriesPerSecond: 0, ttlMs: 1000 }, clock);
    const { clock: c, metrics, calls, svc } = setup(50, empty);
    const p = svc(request());
    c.advance(100);
    assert.equal(calls.length, 1);
    assert.equal(metrics.budget.value, 1);
    calls[0]!.resolve(response('a'));
    await p;
  });
});
