import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newContext } from '../http-server/exchange.js';
import { DebugRequests, noteAttempt, noteDecision, Ring, story, type DebugRecord } from './request-debug.js';

const cfg = { enabled: true, max_requests: 3, max_failed_requests: 2, max_bytes: 1 << 20, slow_threshold: 500, max_ok_per_second: 1000 };
const req = { method: 'GET', authority: 'svc', path: '/x' };

function finish(d: DebugRequests, id: string, status: number, ms: number, flag?: 'UF'): void {
  const ctx = newContext('in', '127.0.0.1', 'HTTP/1.1', id);
  ctx.route = 'r';
  ctx.cluster = 'c';
  if (flag) {
    ctx.flag = flag;
    ctx.error = 'connect refused';
  }
  d.record(req, ctx, status, ms);
}

describe('debug request rings', () => {
  it('keeps failed and slow requests apart from successes, each ring bounded by count', () => {
    const d = new DebugRequests(() => 1_000_000);
    d.configure(cfg);
    finish(d, 'bad1', 503, 5, 'UF');
    finish(d, 'slow1', 200, 900);
    for (let i = 0; i < 10; i++) finish(d, `ok${i}`, 200, 1);
    const l = d.list();
    assert.deepEqual(l.recent.map((r) => r.id), ['ok9', 'ok8', 'ok7']);
    assert.deepEqual(l.failed.map((r) => r.id), ['slow1', 'bad1']);
    assert.ok(d.find('bad1'));
    assert.equal(d.find('ok0'), undefined);
    finish(d, 'bad2', 502, 1);
    assert.equal(d.find('bad1'), undefined, 'the oldest failed request goes first');
  });

  it('is bounded by bytes', () => {
    const ring = new Ring(100, 1000);
    const rec = (id: string): DebugRecord => ({ id, bytes: 300 }) as DebugRecord;
    for (let i = 0; i < 10; i++) ring.push(rec(`r${i}`));
    assert.equal(ring.size, 3);
    assert.ok(ring.bytes <= 1000);
    ring.push({ id: 'huge', bytes: 5000 } as DebugRecord);
    assert.equal(ring.find('huge'), undefined);
  });

  it('keeps at most max_ok_per_second successes per clock second, every failed or slow one, and counts the rest', () => {
    let now = 5_000_000;
    const d = new DebugRequests(() => now);
    d.configure({ ...cfg, max_requests: 100, max_failed_requests: 100, max_ok_per_second: 3 });
    for (let i = 0; i < 5; i++) finish(d, `a${i}`, 200, 1);
    finish(d, 'bad', 503, 1, 'UF');
    finish(d, 'slow', 200, 900);
    now += 999; // same second
    finish(d, 'a5', 200, 1);
    now += 1; // the next second: a fresh allowance
    for (let i = 0; i < 4; i++) finish(d, `b${i}`, 200, 1);
    const l = d.list();
    assert.deepEqual(l.recent.map((r) => r.id), ['b2', 'b1', 'b0', 'a2', 'a1', 'a0']);
    assert.deepEqual(l.failed.map((r) => r.id), ['slow', 'bad']);
    assert.equal(l.skippedOk, 4);
    d.configure({ ...cfg, max_ok_per_second: 0 });
    finish(d, 'c0', 200, 1);
    finish(d, 'c1', 500, 1);
    assert.equal(d.find('c0'), undefined, '0 keeps no success');
    assert.ok(d.find('c1'), 'failures are kept whatever the cap');
  });

  it('records nothing when disabled', () => {
    const d = new DebugRequests();
    d.configure({ ...cfg, enabled: false });
    finish(d, 'x', 503, 1, 'UF');
    assert.equal(d.find('x'), undefined);
    assert.equal(d.enabled, false);
  });

  it('tells the story: attempts, decisions, deadline, cause', () => {
    const d = new DebugRequests(() => Date.UTC(2026, 0, 1));
    d.configure(cfg);
    const ctx = newContext('in', '127.0.0.1', 'HTTP/1.1', 'story1');
    ctx.route = 'api';
    ctx.cluster = 'backend';
    ctx.deadline = ctx.startTime + 2000;
    ctx.attempts = 2;
    noteAttempt(ctx, { endpoint: '10.0.0.1:80', start: 0.5, duration: 12, outcome: 'response 503', status: 503 });
    noteDecision(ctx, 'attempt 1 answered 503: retry_on matched (5xx), retrying');
    noteAttempt(ctx, { endpoint: '10.0.0.2:80', start: 40, duration: 3, outcome: 'failed UF (not-sent): connect refused', flag: 'UF' });
    ctx.flag = 'UF';
    ctx.error = 'connect refused; attempt 2/2';
    d.record(req, ctx, 503, 50);
    const s = story(d.find('story1')!);
    assert.match(s, /Route api sent it to cluster backend/);
    assert.match(s, /deadline of 2\.00 s/);
    assert.match(s, /Attempt 1 to 10\.0\.0\.1:80: .*response 503/);
    assert.match(s, /Attempt 2 to 10\.0\.0\.2:80: .*failed UF/);
    assert.match(s, /Decision: attempt 1 answered 503: retry_on matched/);
    assert.match(s, /Outcome: failed with response flag UF .*connect refused; attempt 2\/2/);
  });

  it('says where a slow success spent its time', () => {
    const d = new DebugRequests();
    d.configure(cfg);
    const ctx = newContext('in', '127.0.0.1', 'HTTP/1.1', 'slow');
    noteAttempt(ctx, { endpoint: 'e:1', start: 1, duration: 800, outcome: 'response 200', status: 200 });
    d.record(req, ctx, 200, 820);
    assert.match(story(d.find('slow')!), /succeeded but slowly: most of the time .* spent upstream, the slowest attempt at e:1/);
  });
});

describe('debug records hold no credential', () => {
  it('a key or token read from the query is masked in the recorded path, as in the access log', () => {
    const d = new DebugRequests(() => 1_000_000);
    d.configure(cfg);
    const ctx = newContext('in', '127.0.0.1', 'HTTP/1.1', 'q1');
    ctx.redactQuery = ['api_key'];
    d.record({ method: 'GET', authority: 'svc', path: '/x?api_key=SECRET&page=2' }, ctx, 200, 1);
    assert.equal(d.find('q1')!.path, '/x?api_key=[redacted]&page=2');
    assert.ok(!JSON.stringify(d.list()).includes('SECRET'));
  });
});
