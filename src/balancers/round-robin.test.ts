// round_robin specifics: exact nginx smooth sequence, plain rotation for equal weights, skipping and avoid.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RoundRobinBalancer } from './round-robin.js';
import { endpoint, endpoints, mulberry32, type TestEndpoint } from './testing.js';

function names(lb: RoundRobinBalancer<TestEndpoint>, n: number, avoid?: TestEndpoint): string[] {
  return Array.from({ length: n }, () => lb.pick({ hash: undefined, avoid })?.address ?? '-');
}

describe('round_robin', () => {
  it('weights [5,1,1] give the smooth nginx sequence a a b a c a a, repeating', () => {
    const lb = new RoundRobinBalancer([endpoint('a', 5), endpoint('b', 1), endpoint('c', 1)]);
    const cycle = ['a', 'a', 'b', 'a', 'c', 'a', 'a'];
    assert.deepEqual(names(lb, 21), [...cycle, ...cycle, ...cycle]);
  });

  it('a retry\'s pick (with an endpoint to avoid) is not a turn: first attempts keep rotating, equal or unequal weights', () => {
    for (const weights of [[1, 1], [2, 2], [3, 1]]) {
      const eps = [endpoint('a', weights[0]), endpoint('b', weights[1])];
      const lb = new RoundRobinBalancer(eps, { random: () => 0 });
      const firsts: string[] = [];
      for (let k = 0; k < 8; k++) {
        const first = lb.pick({ hash: undefined })!;
        firsts.push(first.address);
        // 'a' always fails: its request is retried elsewhere.
        if (first.address === 'a') assert.equal(lb.pick({ hash: undefined, avoid: first })?.address, 'b');
      }
      const a = firsts.filter((x) => x === 'a').length;
      const share = weights[0]! / (weights[0]! + weights[1]!);
      assert.equal(a, 8 * share, `weights ${weights}: first attempts ${firsts.join(' ')}`);
    }
  });

  it('equal weights rotate through every endpoint once per cycle', () => {
    const eps = endpoints(5);
    const lb = new RoundRobinBalancer(eps, { random: mulberry32(7) });
    const seq = names(lb, 15);
    for (let k = 0; k < 15; k += 5) assert.equal(new Set(seq.slice(k, k + 5)).size, 5);
    assert.deepEqual(seq.slice(0, 5), seq.slice(5, 10));
  });

  it('equal weights start at a random offset so a fleet of sidecars does not move in lockstep', () => {
    const eps = endpoints(10);
    const starts = new Set<string | undefined>();
    for (let seed = 0; seed < 20; seed++) {
      starts.add(new RoundRobinBalancer(eps, { random: mulberry32(seed) }).pick({ hash: undefined })?.address);
    }
    assert.ok(starts.size > 3, `only ${starts.size} distinct start points`);
  });

  it('skips unavailable endpoints and keeps the remaining weights smooth', () => {
    const eps = [endpoint('a', 5), endpoint('b', 1), endpoint('c', 1)];
    eps[2]!.available = false;
    const lb = new RoundRobinBalancer(eps);
    const seq = names(lb, 12);
    assert.equal(seq.filter((s) => s === 'b').length, 2);
    assert.equal(seq.filter((s) => s === 'c').length, 0);
    // Smooth: never more than 5 a's in a row.
    assert.ok(!seq.join('').includes('aaaaaa'), seq.join(''));
  });

  it('avoid skips the endpoint, taking the next in the rotation without moving it', () => {
    const eps = endpoints(3);
    const lb = new RoundRobinBalancer(eps, { random: () => 0 });
    assert.deepEqual(names(lb, 2, eps[0]), [eps[1]!.address, eps[1]!.address]);
    assert.deepEqual(names(lb, 2), [eps[0]!.address, eps[1]!.address]);
    assert.deepEqual(names(lb, 1, eps[2]), [eps[0]!.address]);
    assert.deepEqual(names(lb, 3), [eps[2]!.address, eps[0]!.address, eps[1]!.address]);
  });

  it('exact weight proportions over a full cycle for non-uniform weights', () => {
    const eps = [endpoint('x', 3), endpoint('y', 2), endpoint('z', 5)];
    const lb = new RoundRobinBalancer(eps);
    const seq = names(lb, 100);
    assert.equal(seq.filter((s) => s === 'x').length, 30);
    assert.equal(seq.filter((s) => s === 'y').length, 20);
    assert.equal(seq.filter((s) => s === 'z').length, 50);
  });
});
