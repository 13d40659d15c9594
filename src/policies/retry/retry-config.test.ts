// The resilience config blocks: defaults when a block is given, and the mistakes the schema refuses.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { circuitBreakers, configSchema, retryBudget, retryPolicy } from '../../config/schema.js';

describe('resilience config', () => {
  it('a bare retry block means one retry on connect failures, refused streams and gateway errors', () => {
    assert.deepEqual(retryPolicy.parse({}), {
      retry_on: ['connect-failure', 'refused-stream', 'gateway-error'],
      max_retries: 1,
      backoff: { base_interval: 25, max_interval: 250 },
      retriable_status_codes: [],
      retriable_headers: [],
      allow_non_idempotent: false,
      idempotency_key_header_allowed: false,
      max_replay_body: 64 * 1024,
    });
  });

  it('cluster defaults: retry ratio 0.2, 10 retries/s floor over 10 s; breakers 1024/1024/1024/3', () => {
    assert.deepEqual(retryBudget.parse({}), { retry_ratio: 0.2, min_retries_per_second: 10, ttl: 10_000 });
    assert.deepEqual(circuitBreakers.parse({}), { max_connections: 1024, max_pending_requests: 1024, max_requests: 1024, max_retries: 3 });
  });

  it('parses durations, sizes and header names in a full route', () => {
    const c = configSchema.parse({
      listeners: [
        {
          name: 'in',
          port: 0,
          routes: [
            {
              cluster: 'a',
              retry: { per_try_timeout: '1s', max_replay_body: '1KiB', retriable_headers: [{ name: 'X-Retry', exact: 'yes' }] },
              fault: { delay: { duration: '50ms' } },
            },
          ],
        },
      ],
      clusters: [{ name: 'a', endpoints: ['127.0.0.1:1'], retry_budget: { ttl: '2s' } }],
    });
    const r = c.listeners[0]!.routes[0]!;
    assert.equal(r.retry?.per_try_timeout, 1000);
    assert.equal(r.retry?.max_replay_body, 1024);
    assert.deepEqual(r.retry?.retriable_headers, [{ name: 'x-retry', exact: 'yes' }]);
    assert.deepEqual(r.fault, { delay: { duration: 50, percent: 100 }, header_control: false });
    assert.equal(c.clusters[0]!.retry_budget?.ttl, 2000);
    assert.deepEqual(c.clusters[0]!.circuit_breakers, { max_connections: 1024, max_pending_requests: 1024, max_requests: 1024, max_retries: 3 }, 'Envoy defaults filled in');
  });

  it('refuses unknown conditions, max_interval below base_interval and a ttl under 1 s', () => {
    assert.equal(retryPolicy.safeParse({ retry_on: ['sometimes'] }).success, false);
    assert.equal(retryPolicy.safeParse({ retry_on: [] }).success, false);
    assert.equal(retryPolicy.safeParse({ backoff: { base_interval: '1s', max_interval: '10ms' } }).success, false);
    assert.equal(retryPolicy.safeParse({ retries: 2 }).success, false);
    assert.equal(retryBudget.safeParse({ ttl: '500ms' }).success, false);
  });
});
