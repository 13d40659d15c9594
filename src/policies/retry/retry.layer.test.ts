// Retry layer against a scripted "cluster": which outcomes are retried, per-try timeouts, budget and breaker limits,
// Retry-After, the endpoint to avoid, and request body replay.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { retryPolicy } from '../../config/schema.js';
import { Cancellation } from '../../core/cancel.js';
import type { Clock } from '../../core/clock.js';
import { ProxyError } from '../../core/errors.js';
import { HeaderList } from '../../core/headers.js';
import type { ProxyRequest, ProxyResponse } from '../../core/service.js';
import { Counter } from '../../observability/metrics.js';
import type { AttemptRequest } from '../../cluster/cluster.js';
import { CircuitBreaker } from '../circuit-breaker/breaker.js';
import { RetryBudget } from './budget.js';
import { outcomeOf, retryLayer, type RetryTarget } from './retry.layer.js';
import { testRequest } from '../testing.js';

/** Real time for now(), but every timer fires on the next turn; the requested delays are recorded. */
function instantClock(): Clock & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    now: () => performance.now(),
    setTimeout(fn, ms) {
      delays.push(ms);
      const t = setImmediate(fn);
      return () => clearImmediate(t);
    },
  };
}

function target(opts: { ratio?: number; min?: number; maxRetries?: number } = {}): RetryTarget {
  const clock = { now: () => performance.now(), setTimeout: () => () => {} };
  return {
    name: 'c1',
    retryBudget: new RetryBudget({ retryRatio: opts.ratio ?? 0.2, minRetriesPerSecond: opts.min ?? 10, ttlMs: 1000 }, clock),
    breaker: new CircuitBreaker({ maxRetries: opts.maxRetries ?? 3 }),
    endpointByAddress: (address) => ({ address, weight: 1, active: 0, available: true }),
    overflow: (threshold, limit) => new ProxyError('UO', `circuit breaker ${threshold} (${limit}) reached on cluster c1`),
  };
}

const request = (method = 'GET', body: Readable | null = null, headers: string[] = []): ProxyRequest =>
  testRequest({ method, body, headers, startTime: performance.now() });

const response = (status: number, headers: string[] = []): ProxyResponse => ({ status, headers: new HeaderList(headers), body: Readable.from([Buffer.from('x')]) });

type Step = ProxyResponse | ProxyError | 'hang';

/** A fake cluster answering attempt i with steps[i], recording what each attempt was sent. */
function script(steps: Step[]) {
  const seen: Array<{ avoid: string | undefined; body: string | undefined; cancel: Cancellation }> = [];
  const service = async (req: ProxyRequest): Promise<ProxyResponse> => {
    const a = req as AttemptRequest;
    const i = seen.length;
    const entry = { avoid: a.avoid?.address, body: undefined as string | undefined, cancel: a.cancel };
    seen.push(entry);
    req.context.attempts++;
    req.context.endpoint = `10.0.0.${i + 1}:80`;
    if (a.body) {
      const chunks: Buffer[] = [];
      for await (const c of a.body) chunks.push(c as Buffer);
      entry.body = Buffer.concat(chunks).toString();
    }
    const step = steps[i] ?? response(200);
    if (step === 'hang') return new Promise((_, reject) => a.cancel.onAbort(reject));
    if (step instanceof ProxyError) throw step;
    return step;
  };
  return { service, seen };
}

const metrics = () => {
  const byReason = new Map<string, Counter>();
  return {
    byReason,
    retry: (reason: string) => {
      let c = byReason.get(reason);
      if (!c) byReason.set(reason, (c = new Counter()));
      return c;
    },
    budgetExhausted: new Counter(),
  };
};

const policy = (over: Record<string, unknown>) => retryPolicy.parse(over);

describe('retryLayer', () => {
  it('is not in the pipeline without a retry block or with max_retries 0', () => {
    const next = async () => response(200);
    assert.equal(retryLayer(undefined, target(), metrics())(next), next);
    assert.equal(retryLayer(policy({ max_retries: 0 }), target(), metrics())(next), next);
  });

  it('retries a 503 on another endpoint and returns the success', async () => {
    const { service, seen } = script([response(503)]);
    const m = metrics();
    const svc = retryLayer(policy({ retry_on: ['5xx'] }), target(), m, { clock: instantClock(), random: () => 0.5 })(service);
    const req = request();
    const res = await svc(req);
    assert.equal(res.status, 200);
    assert.equal(seen.length, 2);
    assert.equal(seen[0]!.avoid, undefined);
    assert.equal(seen[1]!.avoid, '10.0.0.1:80');
    assert.equal(req.context.attempts, 2);
    assert.equal(req.context.flag, undefined);
    assert.equal(m.byReason.get('5xx')?.value, 1);
  });

  it('on exhaustion returns the last response marked URX with attempt N/M', async () => {
    const { service } = script([response(503), response(503), response(503)]);
    const req = request();
    const res = await retryLayer(policy({ retry_on: ['5xx'], max_retries: 2 }), target(), metrics(), { clock: instantClock() })(service)(req);
    assert.equal(res.status, 503);
    assert.equal(req.context.flag, 'URX');
    assert.equal(res.headers.get('x-sidecar-flag'), 'URX');
    assert.match(res.headers.get('x-sidecar-error') ?? '', /attempt 3\/3/);
  });

  it('a failure after retries becomes URX with attempt N/M; a non-retriable one is thrown as is', async () => {
    const uf = (n: number) => new ProxyError('UF', `upstream connect refused by 10.0.0.${n}:80`, { endpoint: `10.0.0.${n}:80` });
    const { service } = script([uf(1), uf(2)]);
    await assert.rejects(
      retryLayer(policy({ retry_on: ['connect-failure'] }), target(), metrics(), { clock: instantClock() })(service)(request()),
      (e: ProxyError) => e.flag === 'URX' && e.status === 503 && /attempt 2\/2/.test(e.message) && /refused/.test(e.message),
    );
    const uh = new ProxyError('UH', 'no healthy endpoint');
    const s2 = script([uh]);
    await assert.rejects(retryLayer(policy({}), target(), metrics())(s2.service)(request()), (e) => e === uh);
    assert.equal(s2.seen.length, 1);
  });

  it('never replays a POST the upstream may have seen, but does when it was never sent', async () => {
    const s1 = script([response(503)]);
    const res = await retryLayer(policy({ retry_on: ['5xx', 'reset'] }), target(), metrics())(s1.service)(request('POST'));
    assert.equal(res.status, 503);
    assert.equal(s1.seen.length, 1);
    const s2 = script([new ProxyError('UR', 'reset')]);
    await assert.rejects(retryLayer(policy({ retry_on: ['reset'] }), target(), metrics())(s2.service)(request('POST')));
    assert.equal(s2.seen.length, 1);
    const s3 = script([new ProxyError('UF', 'refused')]);
    const ok = await retryLayer(policy({ retry_on: ['connect-failure'] }), target(), metrics(), { clock: instantClock() })(s3.service)(request('POST'));
    assert.equal(ok.status, 200);
    assert.equal(s3.seen.length, 2);
  });

  it('replays a POST with Idempotency-Key when the route allows it, body included', async () => {
    const { service, seen } = script([response(503)]);
    const body = Readable.from([Buffer.from('hello '), Buffer.from('world')]);
    const req = request('POST', body, ['idempotency-key', 'abc']);
    const res = await retryLayer(policy({ retry_on: ['5xx'], idempotency_key_header_allowed: true }), target(), metrics(), { clock: instantClock() })(service)(req);
    assert.equal(res.status, 200);
    assert.deepEqual(seen.map((s) => s.body), ['hello world', 'hello world']);
  });

  it('a body over max_replay_body is sent once and not retried', async () => {
    const { service, seen } = script([response(503)]);
    const body = Readable.from([Buffer.alloc(600, 1), Buffer.alloc(600, 2)]);
    const req = request('PUT', body);
    const res = await retryLayer(policy({ retry_on: ['5xx'], max_replay_body: 1024 }), target(), metrics(), { clock: instantClock() })(service)(req);
    assert.equal(res.status, 503);
    assert.equal(seen.length, 1);
    assert.match(res.headers.get('x-sidecar-error') ?? '', /max_replay_body/);
  });

  it('a per-try timeout aborts only that attempt, and the retry goes on', async () => {
    const { service, seen } = script(['hang']);
    const req = request();
    const res = await retryLayer(policy({ retry_on: ['gateway-error'], per_try_timeout: 30 }), target(), metrics())(service)(req);
    assert.equal(res.status, 200);
    assert.equal(seen.length, 2);
    assert.equal(seen[0]!.cancel.aborted, true);
    assert.match(String(seen[0]!.cancel.reason?.message), /per-try timeout after 30ms/);
    assert.equal(req.cancel.aborted, false);
  });

  it('stops when the retry budget is empty and says so, keeping the original flag', async () => {
    const { service, seen } = script([new ProxyError('UF', 'refused'), new ProxyError('UF', 'refused')]);
    const m = metrics();
    await assert.rejects(
      retryLayer(policy({ retry_on: ['connect-failure'], max_retries: 3 }), target({ ratio: 0, min: 0 }), m)(service)(request()),
      (e: ProxyError) => e.flag === 'UF' && /retry budget exhausted/.test(e.message) && /attempt 1\/4/.test(e.message),
    );
    assert.equal(seen.length, 1);
    assert.equal(m.budgetExhausted.value, 1);
  });

  it('stops when the max_retries breaker is full', async () => {
    const t = target({ maxRetries: 0 });
    const { service, seen } = script([response(503)]);
    const req = request();
    const res = await retryLayer(policy({ retry_on: ['5xx'] }), t, metrics())(service)(req);
    assert.equal(res.status, 503);
    assert.equal(seen.length, 1);
    assert.match(req.context.error ?? '', /max_retries \(0\) reached on cluster c1/);
    assert.equal(req.context.flag, 'UO');
    const s2 = script([new ProxyError('UF', 'refused')]);
    await assert.rejects(retryLayer(policy({}), t, metrics())(s2.service)(request()), (e: ProxyError) => e.flag === 'UO' && e.status === 503 && /max_retries/.test(e.message));
  });

  it('waits the Retry-After of a retriable response, capped at 10x max_interval', async () => {
    const clock = instantClock();
    const { service } = script([response(503, ['retry-after', '1']), response(503, ['retry-after', '3600'])]);
    const cfg = policy({ retry_on: ['5xx'], max_retries: 2, backoff: { base_interval: 10, max_interval: 200 } });
    await retryLayer(cfg, target(), metrics(), { clock })(service)(request());
    assert.deepEqual(clock.delays, [1000, 2000]);
  });

  it('backs off with full jitter within the exponential ceiling, and never past the deadline', async () => {
    const clock = instantClock();
    const { service } = script([response(503), response(503), response(503)]);
    const cfg = policy({ retry_on: ['5xx'], max_retries: 3, backoff: { base_interval: 100, max_interval: 250 } });
    await retryLayer(cfg, target(), metrics(), { clock, random: () => 0.5 })(service)(request());
    assert.deepEqual(clock.delays, [50, 100, 125]);

    const clock2 = instantClock();
    const s2 = script([response(503)]);
    const req = request();
    req.context.deadline = performance.now() + 40;
    await retryLayer(policy({ retry_on: ['5xx'], backoff: { base_interval: 1000, max_interval: 1000 } }), target(), metrics(), { clock: clock2, random: () => 0.99 })(s2.service)(req);
    assert.ok(clock2.delays.length === 1 && clock2.delays[0]! <= 40, String(clock2.delays));
  });

  it('gives up at once when the whole request is cancelled', async () => {
    const { service, seen } = script(['hang']);
    const req = request();
    const p = retryLayer(policy({ retry_on: ['reset', '5xx'] }), target(), metrics())(service)(req);
    setTimeout(() => req.cancel.abort(new ProxyError('UT', 'route timeout')), 10);
    await assert.rejects(p, /route timeout/);
    assert.equal(seen.length, 1);
  });
});

describe('outcomeOf', () => {
  it('maps proxy errors to how far the attempt got', () => {
    assert.deepEqual(outcomeOf(new ProxyError('UF', 'x'), false), { kind: 'not-sent', cause: 'connect-failure' });
    assert.deepEqual(outcomeOf(new ProxyError('UC', 'upstream a:1 refused the stream', { outcome: 'not-sent', code: 'refused-stream' }), false), { kind: 'not-sent', cause: 'refused-stream' });
    assert.deepEqual(outcomeOf(new ProxyError('UC', 'closed'), false), { kind: 'possibly-accepted', reason: 'reset' });
    assert.deepEqual(outcomeOf(new ProxyError('UR', 'x'), false), { kind: 'possibly-accepted', reason: 'reset' });
    assert.deepEqual(outcomeOf(new Error('x'), true), { kind: 'possibly-accepted', reason: 'timeout' });
    assert.equal(outcomeOf(new ProxyError('UH', 'x'), false), undefined);
    assert.equal(outcomeOf(new ProxyError('UO', 'x'), false), undefined);
    assert.equal(outcomeOf(new Error('x'), false), undefined);
  });

  it('reads the typed outcome and cause code, never the message', () => {
    // Words in a message mean nothing: only the fields decide.
    assert.deepEqual(outcomeOf(new ProxyError('UC', 'upstream a:1 refused the stream'), false), { kind: 'possibly-accepted', reason: 'reset' });
    assert.deepEqual(outcomeOf(new ProxyError('UC', 'anything', { outcome: 'not-sent', code: 'refused-stream' }), false), { kind: 'not-sent', cause: 'refused-stream' });
    // A connect timeout is not sent, whichever flag and status carry it.
    assert.deepEqual(outcomeOf(new ProxyError('UF', 'slow', { status: 504, outcome: 'not-sent', code: 'connect-timeout' }), false), { kind: 'not-sent', cause: 'connect-failure' });
    assert.deepEqual(outcomeOf(new ProxyError('UC', 'pool gone', { outcome: 'not-sent', code: 'pool-closed' }), false), { kind: 'not-sent', cause: 'connect-failure' });
    // After the head the upstream saw the request: a replay is gated like any possibly-accepted attempt.
    assert.deepEqual(outcomeOf(new ProxyError('UR', 'x', { outcome: 'response-started', code: 'connection-closed' }), false), { kind: 'possibly-accepted', reason: 'reset' });
    assert.deepEqual(outcomeOf(new ProxyError('UT', 'x', { outcome: 'response-started', code: 'timeout' }), false), { kind: 'possibly-accepted', reason: 'timeout' });
    // A flag that is no upstream attempt's failure carries no outcome, so nothing is retried.
    assert.equal(new ProxyError('DPE', 'bad body').outcome, undefined);
    assert.equal(outcomeOf(new ProxyError('DPE', 'bad body'), false), undefined);
  });
});
