// Sampling: parent-based head decisions, the trace-id ratio (deterministic per trace), and the tail keep rule.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mulberry32 } from '../../policies/testing.js';
import { headSampled, ratioSampled, tailActive, tailKeep } from './sampler.js';

const hexId = (random: () => number): string => Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join('');

describe('sampler', () => {
  it('ratio 0 and 1 are never and always; in between, about that share of random trace ids', () => {
    const random = mulberry32(7);
    const ids = Array.from({ length: 20_000 }, () => hexId(random));
    assert.ok(ids.every((id) => ratioSampled(id, 1)));
    assert.ok(ids.every((id) => !ratioSampled(id, 0)));
    const share = ids.filter((id) => ratioSampled(id, 0.25)).length / ids.length;
    assert.ok(Math.abs(share - 0.25) < 0.02, String(share));
  });

  it('reads the low 52 bits of the id exactly as parseInt does, so sidecars of other builds decide alike', () => {
    const random = mulberry32(5);
    for (let i = 0; i < 5000; i++) {
      const id = i === 0 ? 'ffffffffffffffffffffffffffffffff' : hexId(random);
      const ratio = random();
      assert.equal(ratioSampled(id, ratio), parseInt(id.slice(-13), 16) < ratio * 2 ** 52, id);
    }
  });

  it('the decision is the trace id\'s: the same id decides alike every time, and a smaller ratio keeps a subset', () => {
    const random = mulberry32(11);
    for (let i = 0; i < 2000; i++) {
      const id = hexId(random);
      assert.equal(ratioSampled(id, 0.3), ratioSampled(id, 0.3));
      if (ratioSampled(id, 0.1)) assert.ok(ratioSampled(id, 0.3));
    }
  });

  it('parent-based: a parent\'s flag wins over the ratio; a parent without one goes by the ratio', () => {
    const id = 'ffffffffffffffffffffffffffffffff';
    assert.equal(headSampled({ traceId: id, spanId: '1', sampled: true, format: 'w3c' }, id, 0), true);
    assert.equal(headSampled({ traceId: id, spanId: '1', sampled: false, format: 'w3c' }, '00000000000000000000000000000001', 1), false);
    assert.equal(headSampled({ traceId: id, spanId: '1', sampled: undefined, format: 'b3' }, id, 1), true);
    assert.equal(headSampled(undefined, '00000000000000000000000000000001', 0.5), true);
    assert.equal(headSampled(undefined, id, 0.5), false);
  });

  it('tail: keeps failed (5xx) requests and slow ones, as configured', () => {
    const both = { errors: true, slowerThan: 100 };
    assert.equal(tailKeep(both, 200, 50), false);
    assert.equal(tailKeep(both, 503, 1), true);
    assert.equal(tailKeep(both, 404, 1), false);
    assert.equal(tailKeep(both, 200, 101), true);
    assert.equal(tailKeep(both, 200, 100), false);
    assert.equal(tailKeep({ errors: false, slowerThan: 0 }, 500, 1e9), false);
    assert.equal(tailActive({ errors: false, slowerThan: 0 }), false);
    assert.equal(tailActive({ errors: false, slowerThan: 1 }), true);
  });
});
