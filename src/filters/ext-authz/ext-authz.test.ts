// ext_authz pure parts with an injected clock and check: the decision cache's TTL and bound, fail open/closed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Cancellation } from '../../core/cancel.js';
import type { Clock } from '../../core/clock.js';
import { ProxyError } from '../../core/errors.js';
import { HeaderList } from '../../core/headers.js';
import type { ProxyRequest } from '../../core/service.js';
import { Counter } from '../../observability/metrics.js';
import { DecisionCache, extAuthzLayer, type CheckFn } from './ext-authz.js';
import { extAuthzConfig } from './schema.js';

const clock = { t: 0, now(): number { return this.t; }, setTimeout: () => () => {} } satisfies Clock & { t: number };

const req = (path = '/x'): ProxyRequest => ({
  method: 'GET', authority: 'a', path, scheme: 'http', headers: new HeaderList([]), body: null, contentLength: 0, cancel: new Cancellation(),
  context: { requestId: 'r', startTime: 0, listener: 'l', downstreamAddress: '127.0.0.1', downstreamProtocol: 'HTTP/1.1', scheme: 'http', fromSidecar: false, route: '', cluster: '', endpoint: '', attempts: 0, flag: undefined, error: undefined, deadline: Infinity, downstreamConnection: undefined, poolWait: undefined },
});

const counters = () => ({ allow: new Counter(), deny: new Counter(), error: new Counter(), cacheHit: new Counter() });

describe('ext_authz', () => {
  it('the cache expires entries after the TTL and keeps at most max entries (least recently used out)', () => {
    const c = new DecisionCache(1000, 2, clock);
    const d = { allowed: true, status: 200, headers: [] };
    c.set('a', d);
    c.set('b', d);
    assert.ok(c.get('a'));
    c.set('c', d);
    assert.equal(c.size, 2);
    assert.equal(c.get('b'), undefined, 'b was least recently used');
    clock.t = 1001;
    assert.equal(c.get('a'), undefined);
  });

  it('fails closed with status_on_error, or open; a 5xx from the service is an error, not a denial', async () => {
    const failing: CheckFn = () => Promise.reject(new Error('ECONNREFUSED'));
    const five: CheckFn = () => Promise.resolve({ status: 503, headers: new Headers() });
    const ok = async () => ({ status: 200, headers: new HeaderList([]), body: null });
    const closed = extAuthzLayer(extAuthzConfig.parse({ uri: 'http://127.0.0.1:1', status_on_error: 503 }), counters(), failing, clock)(ok);
    await assert.rejects(closed(req()), (e: unknown) => e instanceof ProxyError && e.status === 503 && e.flag === 'UAEX');
    const cs = counters();
    const open = extAuthzLayer(extAuthzConfig.parse({ uri: 'http://127.0.0.1:1', failure_mode_allow: true }), cs, five, clock)(ok);
    assert.equal((await open(req())).status, 200);
    assert.equal(cs.error.value, 1);
  });
});
