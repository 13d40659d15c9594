import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { describe, it } from 'node:test';
import { Counter } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { FakeClock } from '../policies/testing.js';
import { H2Guard, type EndReason, type GuardedSession } from './h2-guard.js';

function fakeSession(): GuardedSession & { goaways: number[]; destroys: number } {
  const s = {
    goaways: [] as number[],
    destroys: 0,
    destroyed: false,
    goaway(code?: number): void {
      s.goaways.push(code ?? 0);
    },
    destroy(): void {
      s.destroys++;
      s.destroyed = true;
    },
  };
  return s as unknown as GuardedSession & { goaways: number[]; destroys: number };
}

function setup(): { guard: H2Guard; clock: FakeClock; lines: Array<Record<string, unknown>>; counts: Map<EndReason, Counter> } {
  const clock = new FakeClock();
  const lines: Array<Record<string, unknown>> = [];
  const log = (f: Record<string, unknown> | string): void => void lines.push(typeof f === 'string' ? { msg: f } : f);
  // Warnings and errors only: the operational log at its default level.
  const logger: Logger = { debug: () => {}, info: log, warn: log, error: log, fatal: log, debugEnabled: false, level: 'warn', setLevel: () => {} };
  const counts = new Map<EndReason, Counter>();
  const counter = (r: EndReason): Counter => {
    let c = counts.get(r);
    if (!c) counts.set(r, (c = new Counter()));
    return c;
  };
  return { guard: new H2Guard('in', counter, logger, clock, { prematureResetLimit: 200, graceMs: 1000, logIntervalMs: 10_000 }), clock, lines, counts };
}

describe('H2Guard', () => {
  it('ends a session once 200 of its streams, and most of them, were reset early: GOAWAY ENHANCE_YOUR_CALM, destroyed after the grace', () => {
    const { guard, clock, lines, counts } = setup();
    const s = fakeSession();
    for (let i = 0; i < 199; i++) guard.streamEnded(s, true);
    assert.deepEqual(s.goaways, []);
    guard.streamEnded(s, true);
    assert.deepEqual(s.goaways, [http2.constants.NGHTTP2_ENHANCE_YOUR_CALM]);
    assert.equal(s.destroys, 0, 'not before the grace');
    clock.advance(999);
    assert.equal(s.destroys, 0);
    clock.advance(1);
    assert.equal(s.destroys, 1);
    assert.equal(counts.get('rapid_reset')?.value, 1);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.reason, 'rapid_reset');
  });

  it('leaves a session alone whose early resets are not most of its streams (a client that cancels some requests)', () => {
    const { guard, clock } = setup();
    const s = fakeSession();
    for (let i = 0; i < 900; i++) {
      guard.streamEnded(s, false);
      guard.streamEnded(s, false);
      guard.streamEnded(s, true);
      clock.advance(50); // 20 resets a second: within nghttp2's refill rate
    }
    assert.deepEqual(s.goaways, []);
    assert.equal(s.destroys, 0);
  });

  it("ends a session once nghttp2's reset budget (1000, refilled at 33/s) is spent, even when resets are a minority", () => {
    const { guard } = setup();
    const s = fakeSession();
    for (let i = 0; i < 999; i++) {
      guard.streamEnded(s, false);
      guard.streamEnded(s, false);
      guard.streamEnded(s, true);
    }
    assert.deepEqual(s.goaways, []);
    guard.streamEnded(s, true);
    assert.equal(s.goaways.length, 1);
  });

  it('logs a flood of failed sessions once per interval, counting every one, and destroys each at once', () => {
    const { guard, clock, lines, counts } = setup();
    const err = Object.assign(new Error('Too many invalid HTTP/2 frames'), { code: 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES' });
    const sessions = Array.from({ length: 50 }, fakeSession);
    for (const s of sessions) guard.sessionFailed(s, err);
    assert.ok(sessions.every((s) => s.destroys === 1));
    assert.equal(counts.get('invalid_frames')?.value, 50);
    assert.equal(lines.length, 1);
    clock.advance(10_000);
    guard.sessionFailed(fakeSession(), err);
    assert.equal(lines.length, 2);
    assert.equal(lines[1]!.sessions_not_logged, 49);
    guard.sessionFailed(fakeSession(), Object.assign(new Error('Flooding was detected in this HTTP/2 session'), { code: 'ERR_HTTP2_ERROR' }));
    assert.equal(counts.get('session_error')?.value, 1);
    assert.equal(lines.length, 3, 'each reason has its own interval');
    const byClient = fakeSession();
    guard.sessionFailed(byClient, Object.assign(new Error('Session closed with error code 1'), { code: 'ERR_HTTP2_SESSION_ERROR' }));
    assert.equal(byClient.destroys, 1);
    assert.equal(lines.length, 3, 'a GOAWAY with an error code from the client is not logged as abuse');
    assert.equal(counts.get('session_error')?.value, 1);
  });
});
