// ring_hash specifics: stability, order independence, minimal disruption, clockwise failover and fallback.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashKey } from './hash.js';
import { DEFAULT_RING_SIZE, RingHashBalancer } from './ring-hash.js';
import { endpoints, mulberry32, tally, type TestEndpoint } from './testing.js';

const KEYS = Array.from({ length: 20000 }, (_, i) => hashKey(`user-${i}`));

function assign(lb: RingHashBalancer<TestEndpoint>): string[] {
  return KEYS.map((hash) => lb.pick({ hash })?.address ?? '-');
}

describe('ring_hash', () => {
  it('is stable: the same hash always maps to the same endpoint, whatever the list order', () => {
    const eps = endpoints(6, [1, 2, 1, 3, 1, 1]);
    const a = new RingHashBalancer(eps);
    const b = new RingHashBalancer([...eps].reverse());
    const first = assign(a);
    assert.deepEqual(assign(a), first);
    assert.deepEqual(assign(b), first);
  });

  it('spreads keys evenly across equal endpoints', () => {
    const eps = endpoints(5);
    const t = tally(assign(new RingHashBalancer(eps)));
    for (const e of eps) {
      const share = (t.get(e.address) ?? 0) / KEYS.length;
      assert.ok(Math.abs(share - 0.2) < 0.05, `${e.address} share ${share}`);
    }
  });

  it('removing 1 of 5 endpoints moves only keys that were on it (constant points per endpoint)', () => {
    const eps = endpoints(5);
    // 200 points per endpoint both times, so survivors' rings are untouched.
    const before = assign(new RingHashBalancer(eps, { ringSize: 1000 }));
    const removed = eps[2]!.address;
    const after = assign(new RingHashBalancer(eps.filter((e) => e.address !== removed), { ringSize: 800 }));
    let moved = 0;
    for (let i = 0; i < KEYS.length; i++) {
      if (before[i] === after[i]) continue;
      moved++;
      assert.equal(before[i], removed, `key ${i} moved from survivor ${before[i]} to ${after[i]}`);
    }
    const frac = moved / KEYS.length;
    assert.ok(frac < 0.4, `moved ${frac}`);
    assert.ok(frac > 0.1, `moved ${frac}: removed endpoint should have held ~1/5 of keys`);
  });

  it('removing 1 of 5 endpoints with a fixed ringSize still moves well under 40% of keys', () => {
    // Survivors gain points here (ringSize spread over fewer endpoints), so some survivor-to-survivor
    // movement is expected; it stays bounded.
    const eps = endpoints(5);
    const before = assign(new RingHashBalancer(eps, { ringSize: DEFAULT_RING_SIZE }));
    const removed = eps[4]!.address;
    const after = assign(new RingHashBalancer(eps.filter((e) => e.address !== removed), { ringSize: DEFAULT_RING_SIZE }));
    let moved = 0;
    let fromRemoved = 0;
    let onRemoved = 0;
    for (let i = 0; i < KEYS.length; i++) {
      if (before[i] === removed) onRemoved++;
      if (before[i] === after[i]) continue;
      moved++;
      if (before[i] === removed) fromRemoved++;
    }
    assert.equal(fromRemoved, onRemoved, 'every key on the removed endpoint moved');
    assert.ok(moved / KEYS.length < 0.4, `moved ${moved / KEYS.length}`);
  });

  it('an unavailable endpoint hands its keys to the next available clockwise; others stay put and return when it recovers', () => {
    const eps = endpoints(5);
    const lb = new RingHashBalancer(eps);
    const before = assign(lb);
    eps[1]!.available = false;
    const during = assign(lb);
    for (let i = 0; i < KEYS.length; i++) {
      if (before[i] === eps[1]!.address) assert.notEqual(during[i], eps[1]!.address);
      else assert.equal(during[i], before[i]);
    }
    eps[1]!.available = true;
    assert.deepEqual(assign(lb), before);
  });

  it('failover equals the ring without that endpoint (same points per endpoint)', () => {
    const eps = endpoints(5);
    const lb = new RingHashBalancer(eps, { ringSize: 1000 });
    eps[3]!.available = false;
    const down = assign(lb);
    eps[3]!.available = true;
    const without = assign(new RingHashBalancer(eps.filter((_, i) => i !== 3), { ringSize: 800 }));
    assert.deepEqual(down, without);
  });

  it('avoid walks clockwise to the next endpoint', () => {
    const eps = endpoints(4);
    const lb = new RingHashBalancer(eps);
    for (const hash of KEYS.slice(0, 2000)) {
      const primary = lb.pick({ hash })!;
      const retry = lb.pick({ hash, avoid: primary })!;
      assert.notEqual(retry, primary);
      assert.equal(lb.pick({ hash, avoid: primary }), retry, 'retry target is deterministic');
    }
  });

  it('falls back to weighted random when the request has no hash', () => {
    const eps = endpoints(4, [1, 1, 1, 3]);
    const lb = new RingHashBalancer(eps, { random: mulberry32(9) });
    const n = 20000;
    const t = tally(Array.from({ length: n }, () => lb.pick({ hash: undefined })));
    assert.equal(t.size, 4);
    const share = (t.get(eps[3]!.address) ?? 0) / n;
    assert.ok(Math.abs(share - 0.5) < 0.02, `share ${share}`);
  });

  it('gives every endpoint at least one point even when its weight share rounds to zero', () => {
    const eps = endpoints(3, [10000, 10000, 1]);
    const lb = new RingHashBalancer(eps, { ringSize: 16 });
    eps[0]!.available = false;
    eps[1]!.available = false;
    assert.equal(lb.pick({ hash: 12345 }), eps[2]);
  });
});
