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
