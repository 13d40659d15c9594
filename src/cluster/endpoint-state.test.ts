// Endpoint state keyed by (cluster, address) with a fake clock: it outlives a cluster instance (a reload), follows
// endpoint-set changes, and restarts only when its settings change.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { cluster as clusterSchema, type ClusterConfig } from '../config/schema.js';
import { StaticSource } from '../discovery/static.js';
import { FakeClock } from '../policies/testing.js';
import { UpstreamRegistry } from '../upstream/registry.js';
import { tcpConnector } from '../upstream/connector.js';
import { Cluster } from './cluster.js';
import { ClusterStateRegistry } from './endpoint-state.js';
import { HealthChecker } from './health-checker.js';

const A = '10.255.0.1:80';
const B = '10.255.0.2:80';
const C = '10.255.0.3:80';

function config(extra: Record<string, unknown> = {}): ClusterConfig {
  return clusterSchema.parse({
    name: 'app',
    endpoints: [A, B, C],
    panic_threshold: 0,
    outlier_detection: { consecutive_gateway_failure: 2, base_ejection_time: '10s', max_ejection_percent: 50 },
    ...extra,
  });
}

function setup(): { clock: FakeClock; registry: UpstreamRegistry; states: ClusterStateRegistry } {
  const clock = new FakeClock(1000);
  return { clock, registry: new UpstreamRegistry(tcpConnector, undefined, clock), states: new ClusterStateRegistry() };
}

/** Feeds outcomes into the shared state the way the cluster's terminal service does. */
function fail(states: ClusterStateRegistry, cfg: ClusterConfig, address: string, times: number, clock: FakeClock): void {
  const state = states.acquire(cfg, { clock });
  for (let i = 0; i < times; i++) state.record(address, 'gateway-error');
  states.release(state);
}

/** Routability as the next pick sees it (reading `panic` recomputes it, as a pick does). */
const routable = (c: Cluster, address: string): boolean => {
  void c.panic;
  return c.endpointByAddress(address)!.available;
};

const picked = (c: Cluster, n = 60): Set<string> => {
  const out = new Set<string>();
  for (let i = 0; i < n; i++) {
    const e = c.pick({ headers: undefined, context: undefined } as never);
    if (e) out.add(e.address);
  }
  return out;
};

describe('endpoint state across cluster instances', () => {
  it('an ejection survives a new cluster of the same name and ends on the injected clock', () => {
    const { clock, registry, states } = setup();
    const cfg = config();
    const old = new Cluster(cfg, registry, undefined, { states });
    fail(states, cfg, A, 2, clock);
    assert.equal(routable(old, A), false);
    // A reload: the new snapshot's cluster is built first, then the old one released.
    const next = new Cluster(config({ connect_timeout: '3s' }), registry, undefined, { states });
    old.release();
    assert.deepEqual([...picked(next)].sort(), [B, C]);
    const st = next.endpointStatus(next.endpointByAddress(A)!);
    assert.equal(st.ejected, true);
    assert.equal(st.ejections, 1);
    clock.advance(10_001);
    assert.deepEqual([...picked(next)].sort(), [A, B, C], 'back after base_ejection_time on the fake clock');
    next.release();
  });

  it('a changed outlier_detection starts detection afresh; the last cluster released frees the state', () => {
    const { clock, registry, states } = setup();
    const old = new Cluster(config(), registry, undefined, { states });
    fail(states, config(), A, 2, clock);
    const next = new Cluster(config({ outlier_detection: { consecutive_gateway_failure: 3, max_ejection_percent: 50 } }), registry, undefined, { states });
    old.release();
    assert.equal(routable(next, A), true);
    next.release();
    const fresh = new Cluster(config(), registry, undefined, { states });
    assert.equal(fresh.endpointStatus(fresh.endpointByAddress(A)!).ejections, 0, 'no snapshot held it: state was released');
    fresh.release();
  });

  it('follows endpoint-set changes: staying endpoints keep state, a removed one is forgotten, an added one starts fresh', () => {
    const { clock, registry, states } = setup();
    const source = new StaticSource([A, B, C].map((address) => ({ address, weight: 1 })));
    const c = new Cluster(config(), registry, undefined, { states, source });
    const v1 = c.discovery.version;
    fail(states, config(), A, 2, clock);
    fail(states, config(), B, 1, clock);
    source.set([A, C].map((address) => ({ address, weight: 1 })));
    assert.equal(c.discovery.version, v1 + 1);
    assert.equal(c.endpointByAddress(B), undefined);
    assert.deepEqual([...picked(c)], [C], 'A stays ejected across the update');
    source.set([A, B, C].map((address) => ({ address, weight: 2 })));
    fail(states, config(), B, 1, clock);
    assert.equal(routable(c, B), true, 'B came back with fresh counters (one failure is not two)');
    assert.equal(c.endpointByAddress(A)!.weight, 2, 'weight changed in place');
    assert.equal(routable(c, A), false);
    c.release();
  });
});

describe('health checker on an injected clock', () => {
  it('probes only when the clock says so, keyed by address; a removed endpoint is not probed', async () => {
    let probes = 0;
    const server = http.createServer((_req, res) => {
      probes++;
      res.writeHead(503).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const clock = new FakeClock();
    const results: string[] = [];
    let resolveResult: (() => void) | undefined;
    const checker = new HealthChecker(
      [address],
      { path: '/h', intervalMs: 5000, jitterRatio: 0, timeoutMs: 1000, expectedStatuses: [200] },
      (a, ok) => {
        results.push(`${a}=${ok}`);
        resolveResult?.();
      },
      tcpConnector,
      clock,
    );
    try {
      checker.start();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(probes, 0, 'nothing before the fake clock moves');
      const first = new Promise<void>((r) => (resolveResult = r));
      clock.advance(1);
      await first;
      assert.deepEqual(results, [`${address}=false`]);
      clock.advance(4000);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(probes, 1, 'the next probe waits for the interval on the fake clock');
      checker.remove(address);
      clock.advance(2000);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(probes, 1, 'a removed endpoint is not probed');
      assert.deepEqual(checker.addresses, []);
    } finally {
      checker.stop();
      server.close();
    }
  });
});
