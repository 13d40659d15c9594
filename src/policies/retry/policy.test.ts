// shouldRetry: commit-aware rules (not-sent replays any method; seen requests need idempotency) and reason labels.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { grpcRetryCodes, retryClassifierConfig, shouldRetry, type AttemptOutcome, type RetryOn } from './policy.js';

const noHeaders = (): string | undefined => undefined;
const response = (status: number, headers: Record<string, string> = {}): AttemptOutcome => ({
  kind: 'response',
  status,
  headers: (name) => headers[name],
});
const on = (...r: RetryOn[]): ReadonlySet<RetryOn> => new Set(r);

describe('shouldRetry: not-sent', () => {
  it('always replays a stale keep-alive connection, for any method and empty retry_on', () => {
    for (const method of ['GET', 'POST', 'PATCH']) {
      assert.deepEqual(shouldRetry({ kind: 'not-sent', cause: 'stale-connection' }, retryClassifierConfig({ method })), {
        retry: true,
        reason: 'stale-connection',
      });
    }
  });

  it('replays connect failures and refused streams for POST when retry_on asks', () => {
    const cfg = retryClassifierConfig({ method: 'POST', retryOn: on('connect-failure', 'refused-stream') });
    assert.deepEqual(shouldRetry({ kind: 'not-sent', cause: 'connect-failure' }, cfg), { retry: true, reason: 'connect-failure' });
    assert.deepEqual(shouldRetry({ kind: 'not-sent', cause: 'refused-stream' }, cfg), { retry: true, reason: 'refused-stream' });
  });

  it('does not retry a cause retry_on does not name', () => {
    const cfg = retryClassifierConfig({ retryOn: on('connect-failure', 'retriable-status-codes') });
    assert.deepEqual(shouldRetry({ kind: 'not-sent', cause: 'refused-stream' }, cfg), { retry: false, reason: 'not-retriable' });
  });

  it("treats 'reset', '5xx' and 'gateway-error' as covering not-sent causes, as Envoy does", () => {
    for (const r of ['reset', '5xx', 'gateway-error'] as const) {
      const cfg = retryClassifierConfig({ method: 'POST', retryOn: on(r) });
      assert.equal(shouldRetry({ kind: 'not-sent', cause: 'connect-failure' }, cfg).retry, true, r);
      assert.equal(shouldRetry({ kind: 'not-sent', cause: 'refused-stream' }, cfg).retry, true, r);
    }
  });
});

describe('shouldRetry: possibly-accepted', () => {
  it('retries resets and timeouts of idempotent requests under reset/5xx/gateway-error', () => {
    for (const r of ['reset', '5xx', 'gateway-error'] as const) {
      const cfg = retryClassifierConfig({ method: 'PUT', retryOn: on(r) });
      assert.deepEqual(shouldRetry({ kind: 'possibly-accepted', reason: 'reset' }, cfg), { retry: true, reason: 'reset' });
      assert.deepEqual(shouldRetry({ kind: 'possibly-accepted', reason: 'timeout' }, cfg), { retry: true, reason: 'timeout' });
    }
  });

  it('does not replay a POST the upstream may have processed', () => {
    const cfg = retryClassifierConfig({ method: 'POST', retryOn: on('reset', 'connect-failure') });
    assert.deepEqual(shouldRetry({ kind: 'possibly-accepted', reason: 'reset' }, cfg), { retry: false, reason: 'non-idempotent' });
  });

  it('replays a POST with opt-in, or with an Idempotency-Key the route honours (both flags needed)', () => {
    const base = { method: 'POST', retryOn: on('reset') };
    const reset: AttemptOutcome = { kind: 'possibly-accepted', reason: 'reset' };
    assert.equal(shouldRetry(reset, retryClassifierConfig({ ...base, allowNonIdempotent: true })).retry, true);
    assert.equal(shouldRetry(reset, retryClassifierConfig({ ...base, hasIdempotencyKey: true, idempotencyKeyAllowed: true })).retry, true);
    assert.equal(shouldRetry(reset, retryClassifierConfig({ ...base, hasIdempotencyKey: true })).retry, false);
    assert.equal(shouldRetry(reset, retryClassifierConfig({ ...base, idempotencyKeyAllowed: true })).retry, false);
  });

  it('ignores resets when only connect-failure is enabled', () => {
    const cfg = retryClassifierConfig({ retryOn: on('connect-failure', 'refused-stream') });
    assert.deepEqual(shouldRetry({ kind: 'possibly-accepted', reason: 'timeout' }, cfg), { retry: false, reason: 'not-retriable' });
  });

  it('compares methods case-sensitively', () => {
    const cfg = retryClassifierConfig({ method: 'get', retryOn: on('reset') });
    assert.equal(shouldRetry({ kind: 'possibly-accepted', reason: 'reset' }, cfg).retry, false);
  });
});

describe('shouldRetry: responses', () => {
  it("'5xx' covers 500-599 and 'gateway-error' only 502/503/504", () => {
    const fivexx = retryClassifierConfig({ retryOn: on('5xx') });
    const gw = retryClassifierConfig({ retryOn: on('gateway-error') });
    for (let s = 500; s <= 599; s++) {
      assert.deepEqual(shouldRetry(response(s), fivexx), { retry: true, reason: '5xx' });
      const expected = s === 502 || s === 503 || s === 504;
      assert.deepEqual(shouldRetry(response(s), gw), expected ? { retry: true, reason: 'gateway-error' } : { retry: false, reason: 'not-retriable' });
    }
    for (const s of [200, 204, 301, 404, 429, 499, 600]) assert.equal(shouldRetry(response(s), fivexx).retry, false, String(s));
  });

  it('labels retriable status codes with the code, before the broader classes', () => {
    const cfg = retryClassifierConfig({ retryOn: on('retriable-status-codes', '5xx'), retriableStatusCodes: new Set([503, 429]) });
    assert.deepEqual(shouldRetry(response(503), cfg), { retry: true, reason: 'status-503' });
    assert.deepEqual(shouldRetry(response(429), cfg), { retry: true, reason: 'status-429' });
    assert.deepEqual(shouldRetry(response(500), cfg), { retry: true, reason: '5xx' });
  });

  it('needs retriable-status-codes enabled for the code list to apply', () => {
    const cfg = retryClassifierConfig({ retryOn: on('5xx'), retriableStatusCodes: new Set([429]) });
    assert.equal(shouldRetry(response(429), cfg).retry, false);
  });

  it('retriable-4xx means 409', () => {
    const cfg = retryClassifierConfig({ retryOn: on('retriable-4xx') });
    assert.deepEqual(shouldRetry(response(409), cfg), { retry: true, reason: 'retriable-4xx' });
    assert.equal(shouldRetry(response(400), cfg).retry, false);
  });

  it('matches retriable headers by presence or exact value, names case-insensitively', () => {
    const cfg = retryClassifierConfig({
      retryOn: on('retriable-headers'),
      retriableHeaders: [{ name: 'X-Upstream-Retry', exact: 'yes' }, { name: 'x-overloaded' }],
    });
    assert.deepEqual(shouldRetry(response(200, { 'x-upstream-retry': 'yes' }), cfg), { retry: true, reason: 'retriable-header' });
    assert.equal(shouldRetry(response(200, { 'x-upstream-retry': 'no' }), cfg).retry, false);
    assert.equal(shouldRetry(response(500, { 'x-overloaded': '' }), cfg).retry, true);
    assert.equal(shouldRetry({ kind: 'response', status: 500, headers: noHeaders }, cfg).retry, false);
  });

  it('never replays a non-idempotent request that got a response without opt-in', () => {
    const cfg = retryClassifierConfig({ method: 'PATCH', retryOn: on('5xx', 'retriable-status-codes'), retriableStatusCodes: new Set([503]) });
    assert.deepEqual(shouldRetry(response(503), cfg), { retry: false, reason: 'non-idempotent' });
    assert.deepEqual(shouldRetry(response(503), { ...cfg, allowNonIdempotent: true }), { retry: true, reason: 'status-503' });
  });

  it('honours a custom idempotent method set', () => {
    const cfg = retryClassifierConfig({ method: 'DELETE', retryOn: on('5xx'), idempotentMethods: new Set(['GET']) });
    assert.deepEqual(shouldRetry(response(500), cfg), { retry: false, reason: 'non-idempotent' });
  });
});

describe('shouldRetry: gRPC codes (trailers-only answers)', () => {
  const grpcCfg = (...r: RetryOn[]) => retryClassifierConfig({ method: 'POST', retryOn: on(...r), grpcCodes: grpcRetryCodes(r) });

  it('retries a listed code in the response head, for POST, labelled by its name', () => {
    const cfg = grpcCfg('unavailable', 'resource-exhausted');
    assert.deepEqual(shouldRetry(response(200, { 'grpc-status': '14' }), cfg), { retry: true, reason: 'grpc-unavailable' });
    assert.deepEqual(shouldRetry(response(200, { 'grpc-status': '8' }), cfg), { retry: true, reason: 'grpc-resource-exhausted' });
  });

  it('does not retry an unlisted code, OK, or a response without grpc-status in its head (a started stream)', () => {
    const cfg = grpcCfg('unavailable');
    assert.equal(shouldRetry(response(200, { 'grpc-status': '13' }), cfg).retry, false);
    assert.equal(shouldRetry(response(200, { 'grpc-status': '0' }), cfg).retry, false);
    assert.equal(shouldRetry(response(200, { 'content-type': 'application/grpc' }), cfg).retry, false);
  });

  it('uses Envoy\'s names and codes', () => {
    assert.deepEqual(
      [...grpcRetryCodes(['cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable', '5xx'])],
      [['1', 'cancelled'], ['4', 'deadline-exceeded'], ['13', 'internal'], ['8', 'resource-exhausted'], ['14', 'unavailable']],
    );
  });

  it('gRPC names do not widen the HTTP conditions', () => {
    const cfg = grpcCfg('unavailable');
    assert.equal(shouldRetry(response(503), cfg).retry, false);
    assert.equal(shouldRetry({ kind: 'possibly-accepted', reason: 'reset' }, cfg).retry, false);
  });
});
