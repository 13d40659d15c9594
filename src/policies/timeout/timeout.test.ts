import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ProxyError } from '../../core/errors.js';
import type { ProxyResponse } from '../../core/service.js';
import { FakeClock, testRequest } from '../testing.js';
import { timeoutLayer } from './timeout.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

describe('timeout layer', () => {
  it('aborts the request with 504 UT when no response head arrives in time', async () => {
    const clock = new FakeClock();
    const req = testRequest();
    const svc = timeoutLayer(100, clock)((r) => new Promise<ProxyResponse>((_, reject) => r.cancel.onAbort(reject)));
    const p = svc(req);
    clock.advance(99);
    assert.equal(req.cancel.aborted, false);
    clock.advance(1);
    await assert.rejects(p, (e: unknown) => e instanceof ProxyError && e.flag === 'UT' && /after 100ms \(route timeout\)/.test(e.message));
  });

  it('a caller deadline already spent (grpc-timeout: 0m) is a 504 UT at once, and nothing is sent on', async () => {
    const clock = new FakeClock();
    let called = 0;
    const svc = timeoutLayer(1000, clock)(() => {
      called++;
      return Promise.resolve({ status: 200, headers: testRequest().headers, body: null });
    });
    const req = testRequest({ headers: ['content-type', 'application/grpc', 'grpc-timeout', '0m'] });
    await assert.rejects(svc(req), (e: unknown) => e instanceof ProxyError && e.flag === 'UT' && /grpc-timeout: 0m/.test(e.message));
    assert.equal(called, 0);
  });

  it('requests sharing the route timeout each time out at their own deadline, and finished ones never do', async () => {
    const clock = new FakeClock();
    let finish: ((r: ProxyResponse) => void) | undefined;
    const svc = timeoutLayer(100, clock)(
      (r) =>
        new Promise<ProxyResponse>((resolve, reject) => {
          r.cancel.onAbort(reject);
          finish ??= resolve;
        }),
    );
    const started = [0, 10, 20].map((at) => {
      clock.advance(at - clock.now());
      const req = testRequest({ startTime: clock.now() });
      const done = svc(req).then(() => 'ok', (e: unknown) => (e instanceof ProxyError ? e.flag : 'other'));
      return { req, done };
    });
    clock.advance(50 - clock.now());
    finish!({ status: 200, headers: started[0]!.req.headers, body: null });
    assert.equal(await started[0]!.done, 'ok');
    clock.advance(109 - clock.now());
    assert.deepEqual(started.map((s) => s.req.cancel.aborted), [false, false, false]);
    clock.advance(1);
    assert.deepEqual(started.map((s) => s.req.cancel.aborted), [false, true, false]);
    clock.advance(9);
    assert.equal(started[2]!.req.cancel.aborted, false);
    clock.advance(1);
    assert.deepEqual(await Promise.all(started.map((s) => s.done)), ['ok', 'UT', 'UT']);
    // Nothing is left to fire: a later request is timed from its own start.
    const late = testRequest({ startTime: clock.now() });
    const lateDone = svc(late).catch(() => 'aborted');
    clock.advance(99);
    assert.equal(late.cancel.aborted, false);
    clock.advance(1);
    assert.equal(await lateDone, 'aborted');
  });

  it('a pending timer does not keep the request alive (it holds the cancellation weakly)', async () => {
    const clock = new FakeClock(); // its timers stay pending: nothing advances it
    const collected = new Set<string>();
    const registry = new FinalizationRegistry<string>((what) => collected.add(what));
    (() => {
      const req = testRequest();
      registry.register(req.cancel, 'cancel');
      void timeoutLayer(15_000, clock)(() => new Promise<ProxyResponse>(() => {}))(req);
    })();
    for (let i = 0; i < 10 && !collected.has('cancel'); i++) {
      await new Promise((r) => setImmediate(r));
      gc();
    }
    assert.ok(collected.has('cancel'), 'the request was kept alive by its timer');
  });
});

describe('timeout layer: x-sidecar-timeout trust', () => {
  const forwarded = async (opts: { headerAllowed?: boolean }, fromSidecar: boolean): Promise<string | undefined> => {
    const clock = new FakeClock();
    let seen: string | undefined;
    const svc = timeoutLayer(15_000, clock, opts)((r) => {
      // What the upstream would be told: the deadline the layer settled on.
      seen = r.context.deadline === Infinity ? undefined : String(r.context.deadline - r.context.startTime);
      return Promise.resolve({ status: 200, headers: testRequest().headers, body: null });
    });
    await svc(testRequest({ headers: ['x-sidecar-timeout', '500'], fromSidecar }));
    return seen;
  };

  it('by default honours it from another sidecar only', async () => {
    assert.equal(await forwarded({}, true), '500');
    assert.equal(await forwarded({}, false), '15000');
  });

  it('timeout_header_allowed: true honours it from anyone; false from nobody, a sidecar included', async () => {
    assert.equal(await forwarded({ headerAllowed: true }, false), '500');
    assert.equal(await forwarded({ headerAllowed: false }, true), '15000');
  });

  it('a sidecar deadline that runs out is a 504 UT naming the caller deadline', async () => {
    const clock = new FakeClock();
    const req = testRequest({ headers: ['x-sidecar-timeout', '300'], fromSidecar: true });
    const p = timeoutLayer(15_000, clock)((r) => new Promise<ProxyResponse>((_, reject) => r.cancel.onAbort(reject)))(req);
    clock.advance(300);
    await assert.rejects(p, (e: unknown) => e instanceof ProxyError && e.flag === 'UT' && /caller deadline, x-sidecar-timeout: 300/.test(e.message));
  });
});
