// EndpointSet: diffing a discovered set into adds, removals and weight changes; versions; drain after the swap.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EndpointSet } from './endpoint-set.js';

interface Member {
  address: string;
  weight: number;
  active: number;
  available: boolean;
}

function make(): { set: EndpointSet<Member>; log: string[] } {
  const log: string[] = [];
  let set: EndpointSet<Member> | undefined;
  set = new EndpointSet<Member>('round_robin', {}, {
    add: (d) => {
      log.push(`+${d.address}`);
      return { address: d.address, weight: d.weight, active: 0, available: true };
    },
    remove: (e) => {
      // Called after the swap: the removed member is already out of the list and the balancer.
      log.push(`-${e.address}${set!.list.includes(e) ? ' (still listed!)' : ''}`);
    },
  });
  return { set, log };
}

const ep = (address: string, weight = 1): { address: string; weight: number } => ({ address, weight });

describe('EndpointSet', () => {
  it('diffs a whole-set replacement: adds, removals, in-place weight changes, repeated addresses', () => {
    const { set, log } = make();
    assert.deepEqual(set.replace([ep('a:1'), ep('b:1'), ep('a:1', 9)]), { added: ['a:1', 'b:1'], removed: [], reweighted: [] });
    const a = set.get('a:1');
    assert.equal(a?.weight, 1, 'first entry of a repeated address wins');
    assert.equal(set.version, 1);
    assert.deepEqual(set.replace([ep('a:1', 4), ep('c:1')]), { added: ['c:1'], removed: ['b:1'], reweighted: ['a:1'] });
    assert.equal(set.get('a:1'), a, 'a staying member keeps its identity');
    assert.equal(a!.weight, 4);
    assert.deepEqual(set.list.map((e) => e.address), ['a:1', 'c:1']);
    assert.equal(set.version, 2);
    assert.deepEqual(log, ['+a:1', '+b:1', '+c:1', '-b:1']);
  });

  it('a no-op update keeps the version and the balancer; clear() removes everyone', () => {
    const { set, log } = make();
    set.replace([ep('a:1'), ep('b:1')]);
    const list = set.list;
    set.replace([ep('b:1'), ep('a:1')]);
    assert.equal(set.version, 1);
    assert.equal(set.list, list);
    set.clear();
    assert.equal(set.size, 0);
    assert.equal(set.pick({ hash: undefined }), undefined);
    assert.deepEqual(log.slice(2).sort(), ['-a:1', '-b:1']);
  });

  it('picks only current members', () => {
    const { set } = make();
    set.replace([ep('a:1'), ep('b:1')]);
    set.replace([ep('b:1')]);
    for (let i = 0; i < 20; i++) assert.equal(set.pick({ hash: undefined })?.address, 'b:1');
  });
});
