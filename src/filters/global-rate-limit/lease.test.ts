// The global rate limit's local pre-check on a fake clock: gcraLease, the LeaseTable (spend, expiry, remembered
// refusals, LRU bound), and the layer over an in-memory GCRA store shared by several "sidecars": Redis calls saved,
// one lease call per key at a time, and never more admitted than the store granted, within the documented bound.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Cancellation } from '../../core/cancel.js';
import { ProxyError } from '../../core/errors.js';
import { HeaderList } from '../../core/headers.js';
import type { ProxyRequest } from '../../core/service.js';
import { Counter } from '../../observability/metrics.js';
import { FakeClock } from '../../policies/testing.js';
import { gcra, gcraLease, type GcraLimit } from './gcra.js';
import { globalRateLimitLayer, type GcraStore } from './global-rate-limit.js';
import { LeaseTable } from './lease.js';
import { globalRateLimitSpec } from './schema.js';

const limit: GcraLimit = { burst: 3, intervalMs: 100 };

describe('gcraLease', () => {
  it('takes as many as fit up to the lease, at least one, and refuses like gcra', () => {
    const a = gcraLease(limit, undefined, 1000, 10);
    assert.deepEqual([a.allowed, a.granted, a.remaining], [true, 3, 0]);
    const b = gcraLease(limit, a.tat, 1000, 10);
    assert.deepEqual([b.allowed, b.granted, b.retryAfterMs], [false, 0, 100]);
    assert.equal(b.tat, a.tat, 'a refusal takes nothing');
    const c = gcraLease(limit, a.tat, 1150, 10);
    assert.deepEqual([c.allowed, c.granted], [true, 1], 'one interval and a half later: one fits');
    assert.deepEqual(gcraLease({ burst: 100, intervalMs: 10 }, undefined, 0, 10).granted, 10, 'a lease is capped at its size');
    // A lease of n is the same as n single takes.
    let tat: number | undefined;
    for (let i = 0; i < 2; i++) tat = gcra(limit, tat, 5000).tat;
    assert.equal(gcraLease(limit, undefined, 5000, 2).tat, tat);
  });
});

describe('LeaseTable', () => {
  const opts = { lease: 5, ttlMs: 1000, maxKeys: 2, cacheDenials: true };
  const allowed = { allowed: true, remaining: 7, retryAfterMs: 0, resetMs: 500 };

  it('spends a grant less the token of the request that asked, then sends the next request to Redis', () => {
    const clock = new FakeClock(0);
    const t = new LeaseTable(opts, clock);
    assert.equal(t.take('k'), undefined);
    t.record('k', 5, allowed);
    const left = [1, 2, 3, 4].map(() => t.take('k')?.remaining);
    assert.deepEqual(left, [10, 9, 8, 7], "Redis's remaining plus what is still held");
    assert.equal(t.take('k'), undefined);
  });

  it('drops unspent tokens lease_ttl after the grant', () => {
    const clock = new FakeClock(0);
    const t = new LeaseTable(opts, clock);
    t.record('k', 5, allowed);
    clock.advance(999);
    assert.equal(t.take('k')?.allowed, true);
    clock.advance(1);
    assert.equal(t.take('k'), undefined);
    assert.equal(t.size, 0);
  });

  it('remembers a refusal until its Retry-After (and not when cache_denials is off)', () => {
    const clock = new FakeClock(0);
    const t = new LeaseTable(opts, clock);
    t.record('k', 0, { allowed: false, remaining: 0, retryAfterMs: 300, resetMs: 900 });
    assert.deepEqual(t.take('k'), { allowed: false, remaining: 0, retryAfterMs: 300, resetMs: 900 });
    clock.advance(299);
    assert.equal(t.take('k')?.retryAfterMs, 1);
    clock.advance(1);
    assert.equal(t.take('k'), undefined);
    const off = new LeaseTable({ ...opts, cacheDenials: false }, clock);
    off.record('k', 0, { allowed: false, remaining: 0, retryAfterMs: 300, resetMs: 900 });
    assert.equal(off.take('k'), undefined);
  });

  it('holds at most max_keys keys, dropping the least recently used', () => {
    const t = new LeaseTable(opts, new FakeClock(0));
    t.record('a', 5, allowed);
    t.record('b', 5, allowed);
    t.take('a');
    t.record('c', 5, allowed);
    assert.equal(t.size, 2);
    assert.equal(t.take('b'), undefined, 'b was the least recently used');
    assert.equal(t.take('a')?.allowed, true);
  });
});

/** A GCRA store in memory on the fake clock (Redis's contract), counting calls and tokens granted. */
function memoryStore(clock: FakeClock, opts: { delayMs?: number } = {}): GcraStore & { calls: number; granted: number } {
  const tats = new Map<string, number>();
  const s = {
    calls: 0,
    granted: 0,
    async take(key: string, l: GcraLimit, lease?: number) {
      s.calls++;
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      const d = lease === undefined ? { ...gcra(l, tats.get(key), clock.now()), granted: 0 } : gcraLease(l, tats.get(key), clock.now(), lease);
      const granted = lease === undefined ? (d.allowed ? 1 : 0) : d.granted;
      if (d.allowed) tats.set(key, d.tat);
      s.granted += granted;
      return { allowed: d.allowed, granted, remaining: d.remaining, retryAfterMs: d.retryAfterMs, resetMs: d.resetMs };
    },
  };
  return s;
}

const request = (tenant: string): ProxyRequest => ({
  method: 'GET',
  authority: 'api',
  path: '/',
  scheme: 'http',
  headers: new HeaderList(['x-tenant', tenant]),
  body: null,
  contentLength: 0,
  cancel: new Cancellation(),
  context: { requestId: 'r', startTime: 0, listener: 'l', downstreamAddress: '10.0.0.1', downstreamProtocol: 'HTTP/1.1', scheme: 'http', fromSidecar: false, route: '', cluster: '', endpoint: '', attempts: 0, flag: undefined, error: undefined, deadline: Infinity, downstreamConnection: undefined, poolWait: undefined },
});

const counters = () => ({ allowed: new Counter(), limited: new Counter(), errorAllowed: new Counter(), errorDenied: new Counter(), localAllowed: new Counter(), localLimited: new Counter() });

function sidecar(store: GcraStore, clock: FakeClock, extra: Record<string, unknown>) {
  const cfg = globalRateLimitSpec.schema.parse({ redis: { url: 'redis://127.0.0.1:9', timeout: '1s' }, key: { source: 'header', name: 'x-tenant' }, ...extra });
  const c = counters();
  const svc = globalRateLimitLayer(cfg, store, c, clock)(async () => ({ status: 200, headers: new HeaderList([]), body: null }));
  const send = async (tenant: string): Promise<number> => {
    try {
      return (await svc(request(tenant))).status;
    } catch (e) {
      if (e instanceof ProxyError) return 429;
      throw e;
    }
  };
  return { send, counters: c };
}

describe('global_rate_limit with local_precheck', () => {
  it('is off unless configured: every request is one store call', async () => {
    const clock = new FakeClock(0);
    const store = memoryStore(clock);
    const a = sidecar(store, clock, { burst: 100, rate: 100, period: '1s' });
    for (let i = 0; i < 20; i++) assert.equal(await a.send('t'), 200);
    assert.equal(store.calls, 20);
  });

  it('clearly allowed traffic: one store call per lease; near the limit it asks per request, refusals are remembered', async () => {
    const clock = new FakeClock(0);
    const store = memoryStore(clock);
    const a = sidecar(store, clock, { burst: 25, rate: 10, period: '1s', local_precheck: { lease: 10, lease_ttl: '1s' } });
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push(await a.send('t'));
    assert.equal(statuses.filter((s) => s === 200).length, 25, 'exactly the burst passes');
    // Leases of 10, 10, then 5 (what fits), one refusal; the other 14 refusals come from the remembered one.
    assert.equal(store.calls, 4);
    assert.equal(a.counters.localAllowed.value, 22);
    assert.equal(a.counters.localLimited.value, 14);
    clock.advance(100); // one token refilled; the refusal's Retry-After (100 ms) is over
    assert.equal(await a.send('t'), 200);
    assert.equal(await a.send('t'), 429);
  });

  it('one lease call per key at a time: concurrent requests wait for it and spend from it', async () => {
    const clock = new FakeClock(0);
    const store = memoryStore(clock, { delayMs: 5 });
    const a = sidecar(store, clock, { burst: 100, rate: 100, period: '1s', local_precheck: { lease: 10 } });
    const statuses = await Promise.all(Array.from({ length: 20 }, () => a.send('t')));
    assert.deepEqual(statuses, Array(20).fill(200));
    assert.equal(store.calls, 2);
  });

  it('three sidecars on one store never admit more than it granted, and over any span no more than burst + rate x (span + lease_ttl)', async () => {
    const clock = new FakeClock(0);
    const store = memoryStore(clock);
    const cfg = { burst: 20, rate: 50, period: '1s', local_precheck: { lease: 8, lease_ttl: '400ms' } };
    const fleet = [sidecar(store, clock, cfg), sidecar(store, clock, cfg), sidecar(store, clock, cfg)];
    const admittedAt: number[] = [];
    // 3 x 100 requests per second for 10 s, spread unevenly across the sidecars.
    for (let ms = 0; ms < 10_000; ms += 10) {
      for (let i = 0; i < 3; i++) {
        const s = fleet[(ms / 10 + (i === 2 ? 0 : i)) % 3]!;
        if ((await s.send('shared')) === 200) admittedAt.push(clock.now());
      }
      clock.advance(10);
    }
    assert.ok(admittedAt.length <= store.granted, `admitted ${admittedAt.length}, granted ${store.granted}`);
    const T = 1000 / 50;
    for (const span of [0, 100, 1000, 5000]) {
      let worst = 0;
      for (let i = 0, j = 0; i < admittedAt.length; i++) {
        while (admittedAt[i]! - admittedAt[j]! > span) j++;
        worst = Math.max(worst, i - j + 1);
      }
      const exact = 20 + Math.floor(span / T);
      const bound = 20 + Math.floor((span + 400) / T);
      assert.ok(worst <= Math.min(bound, exact + 3 * 8), `span ${span} ms: ${worst} admitted, the bound is ${bound} (exact ${exact})`);
    }
    // The long-run rate is the limit's: 50/s over 10 s plus the burst, less what expired unspent.
    assert.ok(admittedAt.length <= 20 + 500 && admittedAt.length >= 400, `admitted ${admittedAt.length}`);
  });
});
