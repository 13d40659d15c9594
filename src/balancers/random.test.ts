// random specifics: weighted distribution and renormalisation when endpoints are unavailable or avoided.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RandomBalancer } from './random.js';
import { endpoint, mulberry32, tally } from './testing.js';

describe('random', () => {
  it('picks proportionally to weight', () => {
    const eps = [endpoint('w1', 1), endpoint('w2', 2), endpoint('w3', 3), endpoint('w4', 4)];
    const lb = new RandomBalancer(eps, { random: mulberry32(11) });
    const n = 50000;
    const t = tally(Array.from({ length: n }, () => lb.pick({ hash: undefined })));
    for (const e of eps) {
      const share = (t.get(e.address) ?? 0) / n;
      assert.ok(Math.abs(share - e.weight / 10) < 0.01, `${e.address} share ${share}`);
    }
  });

  it('renormalises weights over what is still eligible', () => {
    const eps = [endpoint('w1', 1), endpoint('w2', 2, 0, false), endpoint('w3', 3), endpoint('w4', 4)];
    const lb = new RandomBalancer(eps, { random: mulberry32(12) });
    const n = 40000;
    const t = tally(Array.from({ length: n }, () => lb.pick({ hash: undefined, avoid: eps[3] })));
    assert.equal(t.get('w2'), undefined);
    assert.equal(t.get('w4'), undefined);
    const share = (t.get('w3') ?? 0) / n;
    assert.ok(Math.abs(share - 0.75) < 0.01, `w3 share ${share}`);
  });
});
