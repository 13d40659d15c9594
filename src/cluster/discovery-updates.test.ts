// A cluster fed by a discovery source, on a fake clock: an update that would empty it waits out empty_grace (or is
// never applied), locality-aware picks prefer the local zone until too few of it are available, and priority levels
// (SRV priorities) send every pick to the best level with an available endpoint.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cluster as clusterSchema, type ClusterConfig } from '../config/schema.js';
import { StaticSource } from '../discovery/static.js';
import type { DiscoveredEndpoint } from '../discovery/source.js';
import { FakeClock } from '../policies/testing.js';
import { UpstreamRegistry } from '../upstream/registry.js';
import { tcpConnector } from '../upstream/connector.js';
import { Cluster } from './cluster.js';
import { ClusterStateRegistry } from './endpoint-state.js';

const A = { address: '10.254.0.1:80', weight: 1, zone: 'a' };
const B = { address: '10.254.0.2:80', weight: 1, zone: 'a' };
const C = { address: '10.254.0.3:80', weight: 1, zone: 'b' };

function make(extra: Record<string, unknown>, initial: readonly DiscoveredEndpoint[] = [A, B, C]): { c: Cluster; source: StaticSource; clock: FakeClock; states: ClusterStateRegistry; cfg: ClusterConfig } {
  const clock = new FakeClock(1000);
  const cfg = clusterSchema.parse({ name: 'app', panic_threshold: 0, ...extra, discovery: { file: { path: '/unused' }, ...(extra.discovery as object | undefined) } });
  const source = new StaticSource(initial);
  const states = new ClusterStateRegistry();
  const c = new Cluster(cfg, new UpstreamRegistry(tcpConnector, undefined, clock), undefined, { clock, source, states });
  return { c, source, clock, states, cfg };
}

const addresses = (c: Cluster): string[] => c.endpoints.map((e) => e.address).sort();
const picked = (c: Cluster, n = 60): Set<string> => {
  const out = new Set<string>();
  for (let i = 0; i < n; i++) {
    const e = c.pick({ headers: undefined, context: undefined } as never);
    if (e) out.add(e.address);
  }
  return out;
};

describe('empty-update grace', () => {
  it('holds an empty update for empty_grace, applies it then; a non-empty update in between cancels it', () => {
    const { c, source, clock } = make({ discovery: { empty_grace: '10s' } });
    try {
      source.set([]);
      assert.deepEqual(addresses(c), [A.address, B.address, C.address], 'held');
      assert.ok(c.discovery.emptyPendingUntil !== undefined);
      assert.match(c.discovery.lastError!, /held until/);
      clock.advance(5_000);
      source.set([A]);
      assert.deepEqual(addresses(c), [A.address]);
      assert.equal(c.discovery.emptyPendingUntil, undefined);
      clock.advance(10_000);
      assert.deepEqual(addresses(c), [A.address], 'the cancelled empty update never lands');
      source.set([]);
      clock.advance(9_999);
      assert.deepEqual(addresses(c), [A.address]);
      clock.advance(1);
      assert.deepEqual(addresses(c), [], 'applied once the grace has passed');
    } finally {
      c.release();
    }
  });

  it('never: an empty update is not applied at all; 0: at once', () => {
    const never = make({ discovery: { empty_grace: 'never' } });
    const now = make({ discovery: { empty_grace: 0 } });
    try {
      never.source.set([]);
      never.clock.advance(3_600_000);
      assert.equal(never.c.endpoints.length, 3);
      assert.match(never.c.discovery.lastError!, /empty_grace: never/);
      now.source.set([]);
      assert.equal(now.c.endpoints.length, 0);
    } finally {
      never.c.release();
      now.c.release();
    }
  });
});

describe('locality-aware balancing', () => {
  it('prefers the local zone, spills over when too few of it are available, and comes back', () => {
    const { c, cfg, states, clock } = make({
      locality: { local_zone: 'a', min_available_percent: 60 },
      outlier_detection: { consecutive_gateway_failure: 1, base_ejection_time: '10s', max_ejection_percent: 100 },
    });
    try {
      assert.deepEqual([...picked(c)].sort(), [A.address, B.address], 'local zone only');
      assert.equal(c.endpointByAddress(C.address)!.zone, 'b');
      // Eject A: half of zone a is available, under 60 %: spill over to every zone.
      const state = states.acquire(cfg, { clock });
      state.record(A.address, 'gateway-error');
      states.release(state);
      assert.deepEqual([...picked(c)].sort(), [B.address, C.address]);
      clock.advance(11_000);
      assert.deepEqual([...picked(c)].sort(), [A.address, B.address], 'back to local once A returns');
    } finally {
      c.release();
    }
  });

  it('without endpoints in the local zone it balances over all of them', () => {
    const { c } = make({ locality: { local_zone: 'z' } });
    try {
      assert.equal(picked(c).size, 3);
    } finally {
      c.release();
    }
  });
});

describe('priority levels (SRV priority)', () => {
  const P0a = { address: '10.254.1.1:80', weight: 1, priority: 0 };
  const P0b = { address: '10.254.1.2:80', weight: 1, priority: 0 };
  const P1 = { address: '10.254.1.3:80', weight: 1, priority: 5 };
  const P2 = { address: '10.254.1.4:80', weight: 1, priority: 9 };

  it('picks from the best level with an available endpoint, falls back level by level, and returns', () => {
    const { c, cfg, states, clock } = make(
      { outlier_detection: { consecutive_gateway_failure: 1, base_ejection_time: '10s', max_ejection_percent: 100 } },
      [P2, P1, P0a, P0b],
    );
    const eject = (address: string): void => {
      const state = states.acquire(cfg, { clock });
      state.record(address, 'gateway-error');
      states.release(state);
    };
    try {
      assert.deepEqual([...picked(c)].sort(), [P0a.address, P0b.address], 'the best level only');
      assert.equal(c.activePriority, 0);
      eject(P0a.address);
      assert.deepEqual([...picked(c)], [P0b.address], 'still the best level while one of it is available');
      eject(P0b.address);
      assert.deepEqual([...picked(c)], [P1.address], 'the next level takes over');
      assert.equal(c.activePriority, 5);
      clock.advance(1_000);
      eject(P1.address);
      assert.deepEqual([...picked(c)], [P2.address], 'and the one after it');
      clock.advance(9_500);
      assert.deepEqual([...picked(c)].sort(), [P0a.address, P0b.address], 'back to the best level once it returns');
      assert.equal(c.activePriority, 0);
    } finally {
      c.release();
    }
  });

  it("a retry avoiding the best level's only available endpoint goes to the next level", () => {
    const { c } = make({}, [P0a, P1]);
    try {
      const first = c.pick({ headers: undefined, context: undefined } as never)!;
      assert.equal(first.address, P0a.address);
      assert.equal(c.pick({ headers: undefined, context: undefined } as never, first)!.address, P1.address);
    } finally {
      c.release();
    }
  });

  it('a priority change moves the endpoint between levels in place; one level only costs nothing extra', () => {
    const { c, source } = make({}, [P0a, P1]);
    try {
      assert.deepEqual([...picked(c)], [P0a.address]);
      const before = c.endpointByAddress(P1.address);
      source.set([{ ...P0a, priority: 7 }, P1]);
      assert.equal(c.endpointByAddress(P1.address), before, 'same endpoint object');
      assert.deepEqual([...picked(c)], [P1.address]);
      source.set([{ ...P0a, priority: 3 }, { ...P1, priority: 3 }]);
      assert.equal(c.activePriority, undefined, 'a single level: no levels at all');
      assert.equal(picked(c).size, 2);
    } finally {
      c.release();
    }
  });
});

describe('a reload with a network discovery source', () => {
  it("starts the new cluster from the set the same source last delivered, not empty, until its own first read", () => {
    const clock = new FakeClock(1000);
    const registry = new UpstreamRegistry(tcpConnector, undefined, clock);
    const states = new ClusterStateRegistry();
    const cfg = clusterSchema.parse({ name: 'app', discovery: { dns: { name: 'app.test', port: 80 } } });
    /** Delivers only when told (as DNS or etcd: after a network round trip). */
    const later = (): { source: { name: string; start(s: { update(l: readonly { address: string; weight: number }[]): void }): void; stop(): void }; deliver(l: { address: string; weight: number }[]): void } => {
      let sink: { update(l: readonly { address: string; weight: number }[]): void } | undefined;
      return { source: { name: 'dns:app.test', start: (s) => (sink = s), stop: () => (sink = undefined) }, deliver: (l) => sink?.update(l) };
    };
    const first = later();
    const old = new Cluster(cfg, registry, undefined, { clock, states, source: first.source as never });
    assert.equal(old.endpoints.length, 0, 'a first start has nothing to carry');
    first.deliver([A, B]);
    const second = later();
    const next = new Cluster(cfg, registry, undefined, { clock, states, source: second.source as never });
    old.release();
    try {
      assert.deepEqual(addresses(next), [A.address, B.address], 'carried over while the new source reads');
      second.deliver([C]);
      assert.deepEqual(addresses(next), [C.address]);
      const changed = clusterSchema.parse({ name: 'app', discovery: { dns: { name: 'other.test', port: 80 } } });
      const third = new Cluster(changed, registry, undefined, { clock, states, source: later().source as never });
      assert.equal(third.endpoints.length, 0, 'other discovery settings: nothing carried');
      third.release();
    } finally {
      next.release();
    }
  });
});
