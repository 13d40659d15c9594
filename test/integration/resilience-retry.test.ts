// Retries against real flaky upstreams: 5xx to another endpoint, commit-aware POST handling, Idempotency-Key,
// Retry-After, per-try timeouts and the per-cluster retry budget.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { metricsText } from '../helpers/admin.js';
import { startSidecar, type RunningSidecar } from '../helpers/sidecar.js';
import { accessLogFor, httpRequest } from '../helpers/strict-net.js';
import { freePort, reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** Answers 503 to the first `failures` requests on each path, then 200 (recording when each request arrived). */
function flaky(failures: number, headers: Record<string, string> = {}): { handler: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void; times: number[] } {
  const seen = new Map<string, number>();
  const times: number[] = [];
  return {
    times,
    handler: (req, res, body) => {
      times.push(performance.now());
      const n = (seen.get(req.url!) ?? 0) + 1;
      seen.set(req.url!, n);
      if (n <= failures) reply(res, 503, 'try again\n', headers);
      else reply(res, 200, `ok ${req.method} ${body.length}\n`);
    },
  };
}

describe('retries', () => {
  let sidecar: RunningSidecar;
  let port: number;
  let refusedPort: number;
  let refusedPort2: number;
  let down: TestUpstream; // always 503
  let up: TestUpstream; // always 200
  let flakyUp: TestUpstream; // 503 once per path, then 200
  let retryAfterUp: TestUpstream;
  const retryAfterTimes = flaky(1, { 'retry-after': '1' });
  let hanging: TestUpstream;
  let budgetUp: TestUpstream;
  let postDown: TestUpstream;

  before(async () => {
    refusedPort = await freePort();
    refusedPort2 = await freePort();
    down = await startUpstream((_req, res) => reply(res, 503, 'down\n'));
    up = await startUpstream((req, res, body) => reply(res, 200, `up ${req.method} ${body.length}\n`));
    flakyUp = await startUpstream(flaky(1).handler);
    retryAfterUp = await startUpstream(retryAfterTimes.handler);
    hanging = await startUpstream(() => {}); // never answers
    budgetUp = await startUpstream((_req, res) => reply(res, 503, 'down\n'));
    postDown = await startUpstream((_req, res) => reply(res, 503, 'down\n'));
    sidecar = await startSidecar(`
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: /five }
        cluster: down_up
        retry: { retry_on: [5xx], max_retries: 1 }
      - match: { prefix: /post-sent }
        cluster: post_down
        retry: { retry_on: [5xx, connect-failure], max_retries: 2 }
      - match: { prefix: /post-refused }
        cluster: refused_up
        retry: { retry_on: [connect-failure], max_retries: 1 }
      - match: { prefix: /idem-key }
        cluster: flaky
        retry: { retry_on: [5xx], max_retries: 1, idempotency_key_header_allowed: true }
      - match: { prefix: /no-key }
        cluster: flaky
        retry: { retry_on: [5xx], max_retries: 1 }
      - match: { prefix: /retry-after }
        cluster: retry_after
        retry: { retry_on: [5xx], max_retries: 1, backoff: { base_interval: 5ms, max_interval: 200ms } }
      - match: { prefix: /per-try }
        cluster: hang_up
        retry: { retry_on: [gateway-error], max_retries: 1, per_try_timeout: 200ms }
      - match: { prefix: /budget }
        cluster: budget
        retry: { retry_on: [5xx], max_retries: 3, backoff: { base_interval: 1ms, max_interval: 2ms } }
      - match: { prefix: /plain }
        cluster: down_up
      - match: { prefix: /all-down }
        weighted_clusters: [{ cluster: all_refused, weight: 1 }]
        retry: { retry_on: [connect-failure], max_retries: 2 }
clusters:
  - { name: all_refused, endpoints: ["127.0.0.1:${refusedPort}", "127.0.0.1:${refusedPort2}"] }
  - { name: down_up, endpoints: ["${down.address}", "${up.address}"] }
  - { name: post_down, endpoints: ["${postDown.address}"] }
  - { name: refused_up, endpoints: ["127.0.0.1:${refusedPort}", "${up.address}"] }
  - { name: flaky, endpoints: ["${flakyUp.address}"] }
  - { name: retry_after, endpoints: ["${retryAfterUp.address}"] }
  - { name: hang_up, endpoints: ["${hanging.address}", "${up.address}"] }
  - name: budget
    endpoints: ["${budgetUp.address}"]
    retry_budget: { retry_ratio: 0.2, min_retries_per_second: 0.5, ttl: 10s }
`);
    port = sidecar.ports.in!;
  });

  after(async () => {
    await sidecar.stop();
    for (const u of [down, up, flakyUp, retryAfterUp, hanging, budgetUp, postDown]) await u.close();
  });

  it('a 503 is retried on the other endpoint and succeeds', async () => {
    const before = down.requests.length;
    for (let i = 0; i < 6; i++) {
      const res = await httpRequest(port, { path: `/five/${i}` });
      assert.equal(res.status, 200, `${res.status} ${res.body}`);
      assert.match(res.body, /^up GET/);
    }
    assert.ok(down.requests.length - before >= 1, 'round robin never tried the failing endpoint');
    const logs = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => accessLogFor(sidecar, `/five/${i}`)));
    const retried = logs.filter((l) => l.attempts === 2);
    assert.equal(retried.length, down.requests.length - before, 'each 503 cost exactly one extra attempt');
    for (const l of logs) assert.equal(l.response_flag, null);
    const m = await metricsText(sidecar.adminPort);
    assert.match(m, /sidecar_retries_total\{[^}]*cluster="down_up"[^}]*\} [1-9]/);
  });

  it('without a retry block the 503 passes straight through', async () => {
    const statuses = new Set<number>();
    for (let i = 0; i < 4; i++) statuses.add((await httpRequest(port, { path: `/plain/${i}` })).status);
    assert.ok(statuses.has(503), 'the failing endpoint answered as is');
  });

  it('a POST the upstream received is never retried (upstream sees exactly one)', async () => {
    const res = await httpRequest(port, { method: 'POST', path: '/post-sent/a', body: 'payload', headers: { 'content-type': 'text/plain' } });
    assert.equal(res.status, 503);
    assert.equal(postDown.requests.filter((r) => r.url === '/post-sent/a').length, 1);
    const log = await accessLogFor(sidecar, '/post-sent/a');
    assert.equal(log.attempts, 1);
  });

  it('a POST is retried when the first endpoint refused the connection (never sent)', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await httpRequest(port, { method: 'POST', path: `/post-refused/${i}`, body: 'x'.repeat(1000) });
      assert.equal(res.status, 200, `${res.status} ${String(res.headers['x-sidecar-error'])}`);
      assert.equal(res.body, 'up POST 1000\n');
    }
    const logs = await Promise.all([0, 1, 2, 3].map((i) => accessLogFor(sidecar, `/post-refused/${i}`)));
    assert.ok(logs.some((l) => l.attempts === 2), 'no request met the refused endpoint');
    assert.equal(up.requests.filter((r) => r.url!.startsWith('/post-refused/')).length, 4);
  });

  it('a POST over max_replay_body is retried too when the refused connection never took a byte of it', async () => {
    const big = 'y'.repeat(200_000); // over the default 64 KiB max_replay_body
    for (let i = 0; i < 4; i++) {
      const res = await httpRequest(port, { method: 'POST', path: `/post-refused/big-${i}`, body: big });
      assert.equal(res.status, 200, `${res.status} ${String(res.headers['x-sidecar-error'])}`);
      assert.equal(res.body, `up POST ${big.length}\n`);
    }
    const logs = await Promise.all([0, 1, 2, 3].map((i) => accessLogFor(sidecar, `/post-refused/big-${i}`)));
    assert.ok(logs.some((l) => l.attempts === 2), 'no request met the refused endpoint');
  });

  it('a POST with Idempotency-Key is retried on 503 when the route allows it, with its body replayed', async () => {
    const body = 'b'.repeat(5000);
    const res = await httpRequest(port, { method: 'POST', path: '/idem-key/a', body, headers: { 'idempotency-key': 'k-1' } });
    assert.equal(res.status, 200, res.body);
    assert.equal(res.body, 'ok POST 5000\n');
    const seen = flakyUp.requests.filter((r) => r.url === '/idem-key/a');
    assert.equal(seen.length, 2);
    for (const s of seen) assert.equal(s.body.toString(), body);

    const noKey = await httpRequest(port, { method: 'POST', path: '/no-key/a', body });
    assert.equal(noKey.status, 503, 'POST without Idempotency-Key was retried');
    assert.equal(flakyUp.requests.filter((r) => r.url === '/no-key/a').length, 1);
  });

  it('Retry-After on a retriable response sets the delay before the retry', async () => {
    const t0 = performance.now();
    const res = await httpRequest(port, { path: '/retry-after/a' });
    const ms = performance.now() - t0;
    assert.equal(res.status, 200);
    assert.equal(retryAfterTimes.times.length, 2);
    const gap = retryAfterTimes.times[1]! - retryAfterTimes.times[0]!;
    assert.ok(gap >= 950, `retried after ${gap} ms, Retry-After said 1 s`);
    assert.ok(ms < 2500, `took ${ms} ms`);
  });

  it('a per-try timeout abandons the hanging endpoint and retries on the other', async () => {
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      const res = await httpRequest(port, { path: `/per-try/${i}` });
      const ms = performance.now() - t0;
      assert.equal(res.status, 200, `${res.status} ${String(res.headers['x-sidecar-error'])}`);
      assert.ok(ms < 1500, `took ${ms} ms`);
    }
    const logs = await Promise.all([0, 1].map((i) => accessLogFor(sidecar, `/per-try/${i}`)));
    assert.equal(logs.filter((l) => l.attempts === 2).length, hanging.requests.length);
    assert.ok(hanging.requests.length >= 1, 'the hanging endpoint was never tried');
  });

  it('when every attempt fails the answer is the last failure, flagged URX with attempt N/M (weighted route too)', async () => {
    const res = await httpRequest(port, { path: '/all-down/a' });
    assert.equal(res.status, 503);
    assert.equal(res.headers['x-sidecar-flag'], 'URX');
    assert.match(String(res.headers['x-sidecar-error']), /connect refused by 127\.0\.0\.1:\d+; attempt 3\/3/);
    const log = await accessLogFor(sidecar, '/all-down/a');
    assert.equal(log.response_flag, 'URX');
    assert.equal(log.attempts, 3);
  });

  it('the retry budget caps retries when the upstream fails every request', async () => {
    const n = 50;
    const messages: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await httpRequest(port, { path: `/budget/${i}` });
      assert.equal(res.status, 503);
      messages.push(String(res.headers['x-sidecar-error'] ?? ''));
    }
    const seen = budgetUp.requests.length;
    // retry_ratio 0.2 of 50 requests, plus min_retries_per_second 0.5 x ttl 10 s = 5.
    assert.ok(seen <= n * 1.2 + 5, `upstream saw ${seen} requests for ${n}`);
    assert.ok(seen > n, 'no retries at all');
    assert.ok(messages.some((m) => /retry budget exhausted/.test(m)), messages.join('\n'));
    assert.ok(messages.some((m) => /attempt \d\/4/.test(m)), messages.join('\n'));
    const last = await accessLogFor(sidecar, `/budget/${n - 1}`);
    assert.equal(last.status, 503);
    const m = await metricsText(sidecar.adminPort);
    assert.match(m, /sidecar_retry_budget_exhausted_total\{cluster="budget"\} [1-9]/);
  });
});
