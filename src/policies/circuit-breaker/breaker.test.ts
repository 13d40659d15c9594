// CircuitBreaker: each threshold caps its counter, rejections are counted per threshold, openedBy tracks the trip.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker, type BreakerThreshold } from './breaker.js';

type Kind = 'Connection' | 'Pending' | 'Request' | 'Retry';
const KINDS: ReadonlyArray<[Kind, BreakerThreshold]> = [
  ['Connection', 'max_connections'],
  ['Pending', 'max_pending_requests'],
  ['Request', 'max_requests'],
  ['Retry', 'max_retries'],
];

function acquire(b: CircuitBreaker, k: Kind): boolean {
  return k === 'Connection' ? b.tryAcquireConnection() : k === 'Pending' ? b.tryAcquirePending() : k === 'Request' ? b.tryAcquireRequest() : b.tryAcquireRetry();
}
function release(b: CircuitBreaker, k: Kind): void {
  if (k === 'Connection') b.releaseConnection();
  else if (k === 'Pending') b.releasePending();
  else if (k === 'Request') b.releaseRequest();
  else b.releaseRetry();
}

describe('CircuitBreaker', () => {
  it("defaults to Envoy's 1024/1024/1024/3", () => {
    const b = new CircuitBreaker();
    assert.deepEqual([b.maxConnections, b.maxPendingRequests, b.maxRequests, b.maxRetries], [1024, 1024, 1024, 3]);
    for (let i = 0; i < 3; i++) assert.ok(b.tryAcquireRetry());
    assert.equal(b.tryAcquireRetry(), false);
  });

  for (const [kind, threshold] of KINDS) {
    it(`caps ${threshold} and counts each rejection`, () => {
      const b = new CircuitBreaker({ maxConnections: 2, maxPendingRequests: 2, maxRequests: 2, maxRetries: 2 });
      assert.ok(acquire(b, kind));
      assert.ok(acquire(b, kind));
      assert.equal(b.openedBy(), undefined); // at capacity, but nothing rejected yet
      assert.equal(b.isOpen(threshold), true);
      assert.equal(acquire(b, kind), false);
      assert.equal(acquire(b, kind), false);
      assert.equal(b.opens(threshold), 2);
      assert.equal(b.openedBy(), threshold);
      for (const [, other] of KINDS) if (other !== threshold) assert.equal(b.opens(other), 0);
      release(b, kind);
      assert.equal(b.openedBy(), undefined); // room again: closed
      assert.equal(b.remaining(threshold), 1);
      assert.ok(acquire(b, kind));
    });
  }

  it('reports the most recent trip while several thresholds are full', () => {
    const b = new CircuitBreaker({ maxRequests: 1, maxPendingRequests: 1 });
    b.tryAcquireRequest();
    b.tryAcquirePending();
    b.tryAcquireRequest();
    assert.equal(b.openedBy(), 'max_requests');
    b.tryAcquirePending();
    assert.equal(b.openedBy(), 'max_pending_requests');
    assert.deepEqual(b.snapshot().open, ['max_pending_requests', 'max_requests']);
  });

  it('ignores unmatched releases instead of going negative', () => {
    const b = new CircuitBreaker({ maxRequests: 1 });
    b.releaseRequest();
    b.releaseRequest();
    assert.ok(b.tryAcquireRequest());
    assert.equal(b.tryAcquireRequest(), false);
    assert.equal(b.snapshot().requests, 1);
  });

  it('a zero limit rejects everything; Infinity never does', () => {
    const b = new CircuitBreaker({ maxRetries: 0, maxRequests: Infinity });
    assert.equal(b.tryAcquireRetry(), false);
    for (let i = 0; i < 10_000; i++) assert.ok(b.tryAcquireRequest());
    assert.equal(b.opens('max_requests'), 0);
  });

  it('scales the retry cap with load when a retry budget is configured', () => {
    const b = new CircuitBreaker({ maxRetries: 1, retryBudget: { budgetPercent: 20, minRetryConcurrency: 3 } });
    assert.equal(b.retryLimit(), 3); // floor
    for (let i = 0; i < 50; i++) b.tryAcquireRequest();
    for (let i = 0; i < 50; i++) b.tryAcquirePending();
    assert.equal(b.retryLimit(), 20); // 20% of 100
    let granted = 0;
    while (b.tryAcquireRetry()) granted++;
    assert.equal(granted, 20);
    assert.equal(b.openedBy(), 'max_retries');
  });

  it('snapshot copies counters and opens', () => {
    const b = new CircuitBreaker({ maxConnections: 1 });
    b.tryAcquireConnection();
    b.tryAcquireConnection();
    const s = b.snapshot();
    assert.equal(s.connections, 1);
    assert.equal(s.opens.max_connections, 1);
    b.tryAcquireConnection();
    assert.equal(s.opens.max_connections, 1); // a copy, not a live view
  });

  it('rejects negative or NaN limits', () => {
    assert.throws(() => new CircuitBreaker({ maxRequests: -1 }), RangeError);
    assert.throws(() => new CircuitBreaker({ maxRetries: Number.NaN }), RangeError);
  });
});
