// global_rate_limit against a real redis-server: two sidecars share one limit; Redis killed mid-run answers by each
// sidecar's failure_mode (fail-open forwards, fail-closed answers 503 RLSE); limits apply again once Redis is back.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { metricsText } from '../helpers/admin.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { httpRequest, sleep } from '../helpers/strict-net.js';
import { reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

const config = (app: string, redis: string, mode: 'allow' | 'deny', extra = ''): string => `
listeners:
  - name: edge
    port: 0
    filters:
      - type: global_rate_limit
        config:
          redis: { url: "${redis}", timeout: 200ms }
          key: { source: header, name: x-tenant }
          burst: 10
          rate: 1
          period: 1m
          failure_mode: ${mode}${extra}
    routes:
      - { match: { prefix: / }, cluster: app }
clusters:
  - { name: app, endpoints: ["${app}"] }
`;

describe('global_rate_limit (real redis-server)', () => {
  let redis: TestRedis;
  let app: TestUpstream;
  let open: RunningSidecar;
  let closed: RunningSidecar;

  before(async () => {
    redis = await startRedis();
    app = await startUpstream((_req, res) => reply(res, 200, 'ok'));
    open = await startSidecar(config(app.address, redis.url, 'allow'));
    closed = await startSidecar(config(app.address, redis.url, 'deny'));
  });

  after(async () => {
    await open?.stop();
    await closed?.stop();
    await app?.close();
    await redis?.stop();
  });

  const send = (s: RunningSidecar, tenant: string) => httpRequest(s.ports.edge!, { path: '/', headers: { 'x-tenant': tenant } });

  /** The first call may race the filter's first connect; wait until Redis decides. */
  async function untilDecided(s: RunningSidecar, tenant: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const r = await send(s, tenant);
      if (r.headers['ratelimit-policy'] !== undefined) return;
      await sleep(50);
    }
    throw new Error('Redis never decided a request');
  }

  it('two sidecars share one burst: exactly 10 of 30 requests pass across both', async () => {
    await untilDecided(open, 'warm-a');
    await untilDecided(closed, 'warm-b');
    const statuses: number[] = [];
    for (let i = 0; i < 15; i++) {
      statuses.push((await send(open, 'shared')).status);
      statuses.push((await send(closed, 'shared')).status);
    }
    assert.equal(statuses.filter((s) => s === 200).length, 10, `statuses: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 429).length, 20);
    const limited = await send(open, 'shared');
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['x-sidecar-flag'], 'RL');
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    assert.match(String(limited.headers['ratelimit-policy']), /10/);
  });

  it('local_precheck: two sidecars leasing tokens still share the burst exactly, with fewer Redis calls; refusals are remembered', async () => {
    const lease = '\n          local_precheck: { lease: 4, lease_ttl: 30s }';
    const a = await startSidecar(config(app.address, redis.url, 'allow', lease));
    const b = await startSidecar(config(app.address, redis.url, 'allow', lease));
    try {
      await untilDecided(a, 'warm-pa');
      await untilDecided(b, 'warm-pb');
      const statuses: number[] = [];
      for (let i = 0; i < 15; i++) {
        statuses.push((await send(a, 'leased')).status);
        statuses.push((await send(b, 'leased')).status);
      }
      assert.equal(statuses.filter((s) => s === 200).length, 10, `statuses: ${statuses.join(',')}`);
      assert.equal(statuses.filter((s) => s === 429).length, 20);
      const count = (m: string, result: string): number =>
        Number(new RegExp(`sidecar_rate_limit_decisions_total\\{[^}]*filter="global_rate_limit"[^}]*result="${result}"[^}]*\\} (\\d+)`).exec(m)?.[1] ?? 0);
      let local = 0;
      let viaRedis = 0;
      for (const s of [a, b]) {
        const m = await metricsText(s.adminPort);
        local += count(m, 'precheck_allowed') + count(m, 'precheck_limited');
        viaRedis += count(m, 'allowed') + count(m, 'limited');
      }
      // Leases of 4, 4, then 2 (what is left): 10 admitted on 3 calls; each sidecar asks Redis once for its first
      // refusal, then remembers it (Retry-After is about a minute at 1 per minute). 2 more for the warm-up.
      assert.ok(local >= 24, `decided locally: ${local}`);
      assert.ok(viaRedis <= 5 + 2, `decided by Redis: ${viaRedis}`);
      const limited = await send(a, 'leased');
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers['retry-after']) >= 1);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('Redis killed: fail-open forwards, fail-closed answers 503 RLSE; back up: limits apply again', async () => {
    await redis.stop();
    const down = await send(open, 'shared'); // over the limit, but the store cannot say so
    assert.equal(down.status, 200);
    const refused = await send(closed, 'fresh');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['x-sidecar-flag'], 'RLSE');
    assert.match(String(refused.headers['x-sidecar-error']), /unreachable/);
    const m = await metricsText(open.adminPort);
    assert.match(m, /sidecar_rate_limit_decisions_total\{[^}]*filter="global_rate_limit"[^}]*result="store_error_allowed"[^}]*\} [1-9]/);

    await redis.start(); // an empty Redis: the old counts are gone, the limit starts afresh
    const end = Date.now() + 15_000;
    let back = false;
    while (Date.now() < end && !back) {
      back = (await send(closed, 'after')).status === 200;
      if (!back) await sleep(200);
    }
    assert.ok(back, 'fail-closed sidecar admits again once Redis is back');
    await untilDecided(open, 'after-open');
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await send(open, 'again')).status);
    assert.deepEqual(statuses, [...Array(10).fill(200), 429, 429]);
  });
});
