// Contract suite run against every policy: availability, avoid, coverage, weights and never-throw properties.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createBalancer, hashKey } from './index.js';
import type { BalancerOptions, BalancerPolicy, LoadBalancer, PickContext, Random } from './index.js';
import { endpoint, endpoints, mulberry32, tally, type TestEndpoint } from './testing.js';
import { EndpointSet } from '../cluster/endpoint-set.js';

const POLICIES: readonly BalancerPolicy[] = ['round_robin', 'least_request', 'random', 'ring_hash'];

function make(policy: BalancerPolicy, eps: readonly TestEndpoint[], opts: BalancerOptions = {}): LoadBalancer<TestEndpoint> {
  return createBalancer(policy, eps, { random: mulberry32(42), ...opts });
}

/** Distinct request hashes so ring_hash spreads over the ring; the other policies ignore them. */
function ctx(i: number, avoid?: TestEndpoint): PickContext {
  return { hash: hashKey(`request-${i}`), avoid };
}

function picks(lb: LoadBalancer<TestEndpoint>, n: number, avoid?: TestEndpoint): (TestEndpoint | undefined)[] {
  const out: (TestEndpoint | undefined)[] = [];
  for (let i = 0; i < n; i++) out.push(lb.pick(ctx(i, avoid)));
  return out;
}

for (const policy of POLICIES) {
  describe(`contract: ${policy}`, () => {
    it('returns undefined for an empty endpoint list', () => {
      const lb = make(policy, []);
      assert.equal(lb.pick({ hash: 1 }), undefined);
      assert.equal(lb.pick({ hash: undefined }), undefined);
    });

    it('returns undefined when every endpoint is unavailable, even with avoid set', () => {
      const eps = endpoints(3);
      for (const e of eps) e.available = false;
      const lb = make(policy, eps);
      for (const p of picks(lb, 50)) assert.equal(p, undefined);
      for (const p of picks(lb, 50, eps[0])) assert.equal(p, undefined);
    });

    it('never returns an unavailable endpoint while one is available', () => {
      const eps = endpoints(5, [1, 2, 3, 1, 5]);
      eps[0]!.available = false;
      eps[2]!.available = false;
      eps[4]!.available = false;
      const lb = make(policy, eps);
      const t = tally(picks(lb, 2000));
      assert.deepEqual([...t.keys()].sort(), [eps[1]!.address, eps[3]!.address]);
    });

    it('reads availability live at pick time', () => {
      const eps = endpoints(3);
      const lb = make(policy, eps);
      eps[1]!.available = false;
      assert.ok(!tally(picks(lb, 500)).has(eps[1]!.address));
      eps[1]!.available = true;
      eps[0]!.available = false;
      const t = tally(picks(lb, 500));
      assert.ok(!t.has(eps[0]!.address));
      assert.ok(t.has(eps[1]!.address));
    });

    it('respects avoid when an alternative exists', () => {
      const eps = endpoints(3, [1, 5, 1]);
      const lb = make(policy, eps);
      assert.ok(!tally(picks(lb, 2000, eps[1])).has(eps[1]!.address));
      // A different object with the same address (e.g. from the previous snapshot) is avoided too.
      assert.ok(!tally(picks(lb, 2000, endpoint(eps[1]!.address))).has(eps[1]!.address));
    });

    it('returns the avoided endpoint when it is the only available one', () => {
      const eps = endpoints(3);
      eps[0]!.available = false;
      eps[2]!.available = false;
      const lb = make(policy, eps);
      for (const p of picks(lb, 50, eps[1])) assert.equal(p, eps[1]);
    });

    it('returns the only available endpoint', () => {
      const eps = endpoints(4);
      for (const e of eps) e.available = false;
      eps[3]!.available = true;
      const lb = make(policy, eps);
      for (const p of picks(lb, 50)) assert.equal(p, eps[3]);
    });

    it('chooses every available endpoint over many picks', () => {
      const eps = endpoints(8, [1, 1, 2, 1, 3, 1, 1, 4]);
      eps[5]!.available = false;
      const lb = make(policy, eps);
      const t = tally(picks(lb, 5000));
      for (const e of eps) assert.equal(t.has(e.address), e.available, e.address);
    });

    it('respects weights roughly (3:1 gives ~75%)', () => {
      const eps = [endpoint('heavy:1', 3), endpoint('light:1', 1)];
      const lb = make(policy, eps);
      const n = 20000;
      const share = (tally(picks(lb, n)).get('heavy:1') ?? 0) / n;
      assert.ok(Math.abs(share - 0.75) <= 0.05, `heavy share ${share}`);
    });

    it('only ever returns endpoints from its own list', () => {
      const eps = endpoints(6, [1, 2, 3, 4, 5, 6]);
      const lb = make(policy, eps);
      for (const p of picks(lb, 1000)) assert.ok(p !== undefined && eps.includes(p));
    });

    it('never throws and keeps its invariants for arbitrary inputs (property)', () => {
      const anyNumber = fc.oneof(
        fc.integer({ min: 1, max: 100 }),
        fc.double(),
        fc.constantFrom(0, -1, 0.5, Number.NaN, Infinity, -Infinity, Number.MAX_VALUE),
      );
      const randomSource = fc.oneof(
        fc.integer().map((seed): Random => mulberry32(seed)),
        // Out-of-contract values too: a bad Random must not break picks.
        fc.constantFrom(0, 0.5, 1 - 2 ** -53, 1, Number.NaN, -0.25).map((v): Random => () => v),
      );
      const op = fc.oneof(
        fc.record({
          kind: fc.constant('pick' as const),
          hash: fc.oneof(fc.constant(undefined), fc.nat({ max: 0xffffffff }), anyNumber),
          avoid: fc.oneof(fc.constant(undefined), fc.nat({ max: 9 }), fc.constant('foreign' as const)),
        }),
        fc.record({ kind: fc.constant('toggle' as const), i: fc.nat({ max: 9 }) }),
        fc.record({ kind: fc.constant('active' as const), i: fc.nat({ max: 9 }), v: anyNumber }),
      );
      fc.assert(
        fc.property(
          fc.array(fc.record({ weight: anyNumber, active: anyNumber, available: fc.boolean() }), { maxLength: 8 }),
          fc.array(op, { maxLength: 40 }),
          fc.option(fc.oneof(fc.integer({ min: -5, max: 4096 }), fc.constantFrom(Number.NaN, Infinity, 0.5)), {
            nil: undefined,
          }),
          randomSource,
          (specs, ops, ringSize, random) => {
            const eps = specs.map((s, i) => endpoint(`10.1.0.${i}:80`, s.weight, s.active, s.available));
            const lb = createBalancer(policy, eps, { random, ringSize });
            for (const o of ops) {
              if (o.kind === 'toggle') {
                const e = eps[o.i];
                if (e) e.available = !e.available;
              } else if (o.kind === 'active') {
                const e = eps[o.i];
                if (e) e.active = o.v;
              } else {
                const avoid = o.avoid === 'foreign' ? endpoint('elsewhere:1') : o.avoid === undefined ? undefined : eps[o.avoid];
                const got = lb.pick({ hash: o.hash, avoid });
                const available = eps.filter((e) => e.available);
                if (available.length === 0) {
                  assert.equal(got, undefined);
                  continue;
                }
                assert.ok(got !== undefined && eps.includes(got), 'returns a listed endpoint');
                assert.ok(got.available, 'returns an available endpoint');
                if (avoid !== undefined && available.some((e) => e.address !== avoid.address)) {
                  assert.notEqual(got.address, avoid.address, 'honours avoid');
                }
              }
            }
          },
        ),
        { numRuns: 300, seed: 20240601 },
      );
    });
  });
}

/** A cluster-like endpoint set over test endpoints: the balancer is rebuilt for each version, as the cluster does. */
function setOf(policy: BalancerPolicy, eps: readonly TestEndpoint[]): { set: EndpointSet<TestEndpoint>; publish(list: readonly TestEndpoint[]): void } {
  const byAddress = new Map(eps.map((e) => [e.address, e]));
  const set = new EndpointSet<TestEndpoint>(policy, { random: mulberry32(7) }, {
    add: (d) => byAddress.get(d.address) ?? endpoint(d.address, d.weight),
    remove: () => {},
  });
  const publish = (list: readonly TestEndpoint[]): void => {
    for (const e of list) byAddress.set(e.address, e);
    set.replace(list.map((e) => ({ address: e.address, weight: e.weight })));
  };
  publish(eps);
  return { set, publish };
}

function setPicks(set: EndpointSet<TestEndpoint>, n: number, from = 0): (TestEndpoint | undefined)[] {
  const out: (TestEndpoint | undefined)[] = [];
  for (let i = from; i < from + n; i++) out.push(set.pick(ctx(i)));
  return out;
}

for (const policy of POLICIES) {
  describe(`contract (endpoint-set changes): ${policy}`, () => {
    it('picks only from the current version: an added endpoint is picked, a removed one never again', () => {
      const eps = endpoints(4);
      const { set, publish } = setOf(policy, eps);
      setPicks(set, 100);
      const added = endpoint('10.0.0.99:8080');
      publish([...eps.slice(1), added]);
      const t = tally(setPicks(set, 4000, 100));
      assert.ok(!t.has(eps[0]!.address), 'the removed endpoint is not picked');
      for (const e of [...eps.slice(1), added]) assert.ok((t.get(e.address) ?? 0) > 4000 / 4 / 2, `${e.address} gets its share: ${t.get(e.address)}`);
    });

    it('keeps a sane, even spread after removals and re-adds', () => {
      const eps = endpoints(6);
      const { set, publish } = setOf(policy, eps);
      for (const round of [eps.slice(0, 3), eps.slice(2), eps]) {
        publish(round);
        const n = 6000;
        const t = tally(setPicks(set, n, round.length * 1000));
        assert.deepEqual([...t.keys()].sort(), round.map((e) => e.address).sort());
        for (const e of round) {
          const share = (t.get(e.address) ?? 0) / n;
          assert.ok(Math.abs(share - 1 / round.length) < 0.6 / round.length, `${e.address} share ${share} of ${round.length}`);
        }
      }
    });

    it('never returns a removed endpoint, however attractive (idle, avoided elsewhere)', () => {
      const eps = endpoints(3);
      const { set, publish } = setOf(policy, eps);
      const removed = eps[0]!;
      publish(eps.slice(1));
      removed.active = 0;
      eps[1]!.active = 50;
      eps[2]!.active = 50;
      for (const p of setPicks(set, 500)) assert.ok(p !== undefined && p !== removed);
      // Avoiding one survivor leaves the other, not the removed endpoint.
      for (let i = 0; i < 200; i++) assert.equal(set.pick({ hash: hashKey(`k${i}`), avoid: eps[1] }), eps[2]);
    });

    it('applies a weight change to the next picks', () => {
      const eps = [endpoint('w1:1', 1), endpoint('w2:1', 1)];
      const { set, publish } = setOf(policy, eps);
      publish([endpoint('w1:1', 3), eps[1]!]);
      assert.equal(set.get('w1:1')!.weight, 3, 'the member is re-weighted in place');
      const n = 20000;
      const share = (tally(setPicks(set, n)).get('w1:1') ?? 0) / n;
      assert.ok(Math.abs(share - 0.75) <= 0.05, `re-weighted share ${share}`);
    });
  });
}

describe('contract (endpoint-set changes): ring_hash consistency', () => {
  it('removing an endpoint moves mostly its own keys; adding it back restores the mapping', () => {
    const eps = endpoints(5);
    const { set, publish } = setOf('ring_hash', eps);
    const keys = Array.from({ length: 3000 }, (_, i) => ({ hash: hashKey(`user-${i}`) }));
    const before = keys.map((k) => set.pick(k)!.address);
    publish(eps.slice(1));
    const during = keys.map((k) => set.pick(k)!.address);
    let kept = 0;
    let survivors = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === eps[0]!.address) continue;
      survivors++;
      if (during[i] === before[i]) kept++;
    }
    assert.ok(kept / survivors > 0.7, `${kept} of ${survivors} keys of surviving endpoints stayed`);
    publish(eps);
    assert.deepEqual(keys.map((k) => set.pick(k)!.address), before);
  });
});
