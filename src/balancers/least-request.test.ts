// least_request specifics: P2C prefers lower load, compares active/weight, reads load live.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LoadBalancer, Random } from './balancer.js';
import { LeastRequestBalancer } from './least-request.js';
import { RandomBalancer } from './random.js';
import { endpoint, endpoints, mulberry32, tally, type TestEndpoint } from './testing.js';

describe('least_request (P2C)', () => {
  it('with two endpoints always picks the less-loaded one (the two choices are distinct)', () => {
    const eps = [endpoint('busy', 1, 10), endpoint('idle', 1, 0)];
    const lb = new LeastRequestBalancer(eps, { random: mulberry32(1) });
    for (let i = 0; i < 1000; i++) assert.equal(lb.pick({ hash: undefined })?.address, 'idle');
  });

  it('prefers less-loaded endpoints: the busiest is never chosen, the idlest ~2/3 of the time', () => {
    const eps = [endpoint('a', 1, 0), endpoint('b', 1, 5), endpoint('c', 1, 10)];
    const lb = new LeastRequestBalancer(eps, { random: mulberry32(2) });
    const n = 30000;
    const t = tally(Array.from({ length: n }, () => lb.pick({ hash: undefined })));
    assert.equal(t.get('c') ?? 0, 0);
    const share = (t.get('a') ?? 0) / n;
    assert.ok(Math.abs(share - 2 / 3) < 0.02, `idle share ${share}`);
  });

  it('compares load per unit of weight', () => {
    // 6/4 = 1.5 < 2/1 = 2, so the heavier-loaded but heavier-weighted endpoint wins.
    const eps = [endpoint('big', 4, 6), endpoint('small', 1, 2)];
    const lb = new LeastRequestBalancer(eps, { random: mulberry32(3) });
    for (let i = 0; i < 500; i++) assert.equal(lb.pick({ hash: undefined })?.address, 'big');
  });

  it('reads active live at pick time', () => {
    const eps = [endpoint('a'), endpoint('b')];
    const lb = new LeastRequestBalancer(eps, { random: mulberry32(4) });
    eps[0]!.active = 3;
    assert.equal(lb.pick({ hash: undefined }), eps[1]);
    eps[1]!.active = 9;
    assert.equal(lb.pick({ hash: undefined }), eps[0]);
  });

  it('keeps load far more even than random under a simulated workload', () => {
    // ~100 requests in flight; each step one new request is placed and a random in-flight one completes.
    function spread(policy: (eps: TestEndpoint[], random: Random) => LoadBalancer<TestEndpoint>): number {
      const eps = endpoints(10);
      const random = mulberry32(5);
      const lb = policy(eps, random);
      const inflight: TestEndpoint[] = [];
      let sum = 0;
      let samples = 0;
      for (let i = 0; i < 20000; i++) {
        const e = lb.pick({ hash: undefined })!;
        e.active++;
        inflight.push(e);
        if (inflight.length > 100) {
          const k = Math.floor(random() * inflight.length);
          inflight[k]!.active--;
          inflight[k] = inflight[inflight.length - 1]!;
          inflight.pop();
        }
        if (i > 1000) {
          const loads = eps.map((x) => x.active);
          sum += Math.max(...loads) - Math.min(...loads);
          samples++;
        }
      }
      return sum / samples; // mean max-min spread of in-flight counts
    }
    const p2c = spread((eps, random) => new LeastRequestBalancer(eps, { random }));
    const rnd = spread((eps, random) => new RandomBalancer(eps, { random }));
    assert.ok(p2c < 5, `P2C mean spread ${p2c}`);
    assert.ok(p2c * 2 < rnd, `P2C spread ${p2c} vs random ${rnd}`);
  });

  it('picks among available endpoints only and returns the sole available one', () => {
    const eps = [endpoint('a', 1, 0, false), endpoint('b', 1, 50), endpoint('c', 1, 0, false)];
    const lb = new LeastRequestBalancer(eps, { random: mulberry32(6) });
    for (let i = 0; i < 100; i++) assert.equal(lb.pick({ hash: undefined }), eps[1]);
  });
});
