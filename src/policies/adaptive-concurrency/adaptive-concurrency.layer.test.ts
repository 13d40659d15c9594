// Adaptive concurrency layer over a scripted service: shedding with LS, and the outcome fed back on release.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { adaptiveConcurrencyPolicy } from '../../config/schema.js';
import { ProxyError } from '../../core/errors.js';
import { HeaderList } from '../../core/headers.js';
import type { ProxyRequest, ProxyResponse } from '../../core/service.js';
import { Counter } from '../../observability/metrics.js';
import { FakeClock, testRequest } from '../testing.js';
import { adaptiveConcurrencyLayer, makeLimiter, outcomeOfError, outcomeOfStatus } from './adaptive-concurrency.layer.js';
import type { ConcurrencyLimiter, LimiterOutcome } from './limiter.js';

const request = (): ProxyRequest => testRequest();

/** A fixed-limit limiter that records every release. */
function recording(limit: number): ConcurrencyLimiter & { releases: Array<[number, LimiterOutcome]> } {
  let inflight = 0;
  const releases: Array<[number, LimiterOutcome]> = [];
  return {
    releases,
    limit,
    get inflight() {
      return inflight;
    },
    tryAcquire: () => (inflight < limit ? (inflight++, true) : false),
    release(ms, outcome) {
      inflight--;
      releases.push([ms, outcome]);
    },
  };
}

describe('adaptive concurrency layer', () => {
  it('outcomes: 5xx and 429 are overload, a client going away says nothing', () => {
    assert.equal(outcomeOfStatus(200), 'success');
    assert.equal(outcomeOfStatus(404), 'success');
    assert.equal(outcomeOfStatus(429), 'dropped');
    assert.equal(outcomeOfStatus(503), 'dropped');
    assert.equal(outcomeOfError(new ProxyError('UT', 't')), 'dropped');
    assert.equal(outcomeOfError(new ProxyError('UF', 'f')), 'dropped');
    assert.equal(outcomeOfError(new ProxyError('DC', 'gone')), 'ignore');
    assert.equal(outcomeOfError(new Error('x')), 'ignore');
  });

  it('makeLimiter builds the configured algorithm with its limits', () => {
    const a = makeLimiter(adaptiveConcurrencyPolicy.parse({ algorithm: 'aimd', initial_limit: 7, max_limit: 9 }));
    assert.equal(a.limit, 7);
    const g = makeLimiter(adaptiveConcurrencyPolicy.parse({ algorithm: 'gradient', initial_limit: 3 }));
    assert.equal(g.limit, 3);
    assert.equal(adaptiveConcurrencyPolicy.safeParse({ min_limit: 10, initial_limit: 5 }).success, false);
  });

  it('sheds over the limit with 503 LS and releases at body close with the head latency', async () => {
    const clock = new FakeClock();
    const limiter = recording(1);
    const shed = new Counter();
    let finish: (res: ProxyResponse) => void = () => {};
    const svc = adaptiveConcurrencyLayer(adaptiveConcurrencyPolicy.parse({}), { limiter, shed, route: 'r1', clock })(
      () => new Promise<ProxyResponse>((r) => (finish = r)),
    );
    const p = svc(request());
    await assert.rejects(svc(request()), (e: unknown) => e instanceof ProxyError && e.flag === 'LS' && e.status === 503);
    assert.equal(shed.value, 1);
    clock.advance(30);
    const body = Readable.from([Buffer.from('x')]);
    finish({ status: 200, headers: new HeaderList([]), body });
    const res = await p;
    assert.equal(limiter.releases.length, 0, 'released before the body was done');
    const stream = res.body as Readable;
    stream.resume();
    await new Promise((r) => stream.once('close', r));
    assert.deepEqual(limiter.releases, [[30, 'success']]);
  });

  it('a failure releases as dropped, a downstream cancel as ignore', async () => {
    const limiter = recording(5);
    const svc = adaptiveConcurrencyLayer(adaptiveConcurrencyPolicy.parse({}), { limiter, shed: new Counter(), route: 'r1', clock: new FakeClock() })(
      (req) => (req.path === '/x' && !req.cancel.aborted ? Promise.reject(new ProxyError('UF', 'refused')) : Promise.reject(new ProxyError('DC', 'gone'))),
    );
    await assert.rejects(svc(request()));
    const cancelled = request();
    cancelled.cancel.abort(new ProxyError('DC', 'gone'));
    await assert.rejects(svc(cancelled));
    assert.deepEqual(limiter.releases.map((r) => r[1]), ['dropped', 'ignore']);
  });

  it('without a config the layer is left out', () => {
    const next = async (): Promise<ProxyResponse> => ({ status: 200, headers: new HeaderList([]), body: null });
    assert.equal(adaptiveConcurrencyLayer(undefined, { limiter: recording(1), shed: new Counter(), route: 'r' })(next), next);
  });
});
