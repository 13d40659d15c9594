// Ends downstream HTTP/2 sessions that abuse the listener — rapid resets (CVE-2023-44487), floods of invalid frames
// or refused streams — closing their socket after a short grace, and reports them at a bounded rate.
import http2 from 'node:http2';
import type { Clock } from '../core/clock.js';
import type { Counter } from '../observability/metrics.js';
import type { Logger } from '../observability/logger.js';
import { LogThrottle } from '../observability/log-throttle.js';

const { NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

/** The session operations the guard uses (a real ServerHttp2Session in production). */
export type GuardedSession = Pick<http2.ServerHttp2Session, 'goaway' | 'destroy' | 'destroyed'>;

export type EndReason = 'rapid_reset' | 'invalid_frames' | 'session_error';

export interface H2GuardOptions {
  /** A session is ended once this many of its streams were reset early by the client and they are most of its streams (Envoy's premature-reset rule). */
  readonly prematureResetLimit: number;
  /** Between the GOAWAY and closing the socket: lets the GOAWAY and answers already written reach the client. */
  readonly graceMs: number;
  /** At most one log line per reason per interval; the line says how many sessions it stands for. */
  readonly logIntervalMs: number;
}

export const H2_GUARD_DEFAULTS: H2GuardOptions = { prematureResetLimit: 200, graceMs: 1000, logIntervalMs: 10_000 };

/**
 * nghttp2's own rapid-reset limit (a burst of 1000 RST_STREAM, refilled at 33 per second). Once spent, nghttp2 sends
 * GOAWAY and stops reading the session, but Node says nothing and would leave the socket open until idle_timeout.
 */
const NGHTTP2_RESET_BURST = 1000;
const NGHTTP2_RESET_RATE_PER_MS = 33 / 1000;

interface Tally {
  streams: number;
  premature: number;
  /** A mirror of nghttp2's reset budget. */
  tokens: number;
  refilledAt: number;
  ending: boolean;
}

export class H2Guard {
  readonly #listener: string;
  readonly #ended: (reason: EndReason) => Counter;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #opts: H2GuardOptions;
  readonly #tallies = new WeakMap<GuardedSession, Tally>();
  readonly #throttles = new Map<EndReason, LogThrottle>();

  constructor(listener: string, ended: (reason: EndReason) => Counter, logger: Logger, clock: Clock, opts: H2GuardOptions = H2_GUARD_DEFAULTS) {
    this.#listener = listener;
    this.#ended = ended;
    this.#logger = logger;
    this.#clock = clock;
    this.#opts = opts;
  }

  /** A stream of `session` has ended; `premature` when the client reset it before its response was complete. */
  streamEnded(session: GuardedSession, premature: boolean): void {
    if (session.destroyed) return;
    let t = this.#tallies.get(session);
    if (t === undefined) {
      t = { streams: 0, premature: 0, tokens: NGHTTP2_RESET_BURST, refilledAt: this.#clock.now(), ending: false };
      this.#tallies.set(session, t);
    }
    t.streams++;
    if (!premature || t.ending) return;
    t.premature++;
    const now = this.#clock.now();
    t.tokens = Math.min(NGHTTP2_RESET_BURST, t.tokens + (now - t.refilledAt) * NGHTTP2_RESET_RATE_PER_MS) - 1;
    t.refilledAt = now;
    if (t.tokens <= 0 || (t.premature >= this.#opts.prematureResetLimit && t.premature * 2 > t.streams)) {
      this.#end(session, t, 'rapid_reset', `${t.premature} of ${t.streams} streams reset by the client before their response`);
    }
  }

  /**
   * Node failed the session (too many invalid frames or refused streams, a flood, a protocol error): it is closed at
   * once. A GOAWAY with an error code from the client (ERR_HTTP2_SESSION_ERROR) is the client's complaint, not abuse.
   */
  sessionFailed(session: GuardedSession, err: Error): void {
    const code = (err as NodeJS.ErrnoException).code;
    this.#tallies.delete(session);
    session.destroy();
    if (code === 'ERR_HTTP2_SESSION_ERROR') {
      this.#logger.debug({ listener: this.#listener, detail: err.message }, 'HTTP/2 session ended by the client with an error code');
      return;
    }
    this.#report(code === 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES' ? 'invalid_frames' : 'session_error', err.message);
  }

  #end(session: GuardedSession, t: Tally, reason: EndReason, detail: string): void {
    t.ending = true;
    this.#report(reason, detail);
    try {
      session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
    } catch {
      // already closing
    }
    this.#clock.setTimeout(() => session.destroy(), this.#opts.graceMs);
  }

  #report(reason: EndReason, detail: string): void {
    this.#ended(reason).inc();
    let throttle = this.#throttles.get(reason);
    if (throttle === undefined) this.#throttles.set(reason, (throttle = new LogThrottle(this.#clock, this.#opts.logIntervalMs)));
    const held = throttle.take();
    if (held === undefined) return;
    this.#logger.warn(
      { listener: this.#listener, reason, detail, ...(held > 0 ? { sessions_not_logged: held } : {}) },
      'HTTP/2 session ended: the client misbehaved',
    );
  }
}
