// The HTTP/1.1 upstream of one endpoint: a pool of keep-alive connections, a queue when all are busy (shared fairly
// between downstream connections under contention), and one transparent replay for the keep-alive race.
import type { Cancellation } from '../../core/cancel.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { ProxyError } from '../../core/errors.js';
import type { PoolWait, ProxyRequest, ProxyResponse } from '../../core/service.js';
import { connectTarget, tcpConnector, type Connector } from '../connector.js';
import { poolClosedError } from '../errors.js';
import type { Upstream, UpstreamOptions } from '../upstream.js';
import { Http1Connection, type ConnectionOptions, type ConnectionOwner } from './connection.js';
import { Exchange } from './exchange.js';
import { FairShare } from './fair-share.js';

/** Called once per transparent replay after a stale pooled connection (label: ctx.cluster). */
export type StaleReplayObserver = (cluster: string) => void;

/**
 * Requests already replayed once after a stale connection, by context (shared by every attempt of one request): a
 * request that makes its upstream drop the connection every time is a poison request, not the keep-alive race.
 */
const replayed = new WeakSet<object>();

/** A pooled connection is dropped this long before the idle timeout its upstream announced (the keep-alive race). */
const ANNOUNCED_TIMEOUT_MARGIN = 1000;

const keyOf = (ex: Exchange): object | undefined => ex.req.context.downstreamConnection;

export class Http1Upstream implements Upstream, ConnectionOwner {
  readonly address: string;
  readonly connectTimeout: number;
  /** Counts sidecar_upstream_stale_connection_replays_total; set by the runtime (pools outlive snapshots). */
  onStaleReplay: StaleReplayObserver | undefined;
  readonly #opts: UpstreamOptions;
  readonly #connection: ConnectionOptions;
  /** Idle connections, most recently used last: reuse takes the warmest, and the rest can expire. */
  readonly #idle: Http1Connection[] = [];
  /** Exchanges waiting for a connection, oldest first. */
  #pending: Exchange[] = [];
  /** Connections from connect until close. */
  #open = 0;
  #sweepTimer: NodeJS.Timeout | undefined;
  #closing = false;
  #whenClosed: (() => void) | undefined;
  #closed: Promise<void> | undefined;
  /** Per-downstream shares of the pool; undefined when max_share_per_downstream is 1. */
  readonly #fair: FairShare | undefined;
  /** Every open connection (idle or busy), for reclaiming a stalled one under contention. */
  readonly #conns = new Set<Http1Connection>();
  /** Set while a stalled holder is not yet past reclaim_stalled_after: looks again then. */
  #reclaimTimer: NodeJS.Timeout | undefined;

  /** Time for idle sweeps, pool-wait accounting and stall reclaim; injected so pool policy tests can use a fake clock. */
  readonly #clock: Clock;

  constructor(opts: UpstreamOptions, connector: Connector = tcpConnector, clock: Clock = systemClock) {
    this.#clock = clock;
    this.address = opts.address;
    this.connectTimeout = opts.connectTimeout;
    this.#opts = opts;
    this.#fair = opts.maxSharePerDownstream < 1 ? new FairShare(opts.maxConnections, opts.maxSharePerDownstream) : undefined;
    const target = connectTarget(opts.address);
    this.#connection = { target, connector, connectTimeout: opts.connectTimeout, streamIdleTimeout: opts.streamIdleTimeout };
  }

  get connections(): number {
    return this.#open;
  }

  request(req: ProxyRequest, cancel: Cancellation): Promise<ProxyResponse> {
    if (cancel.aborted) return Promise.reject(cancel.reason);
    if (this.#closing && this.#open === 0) {
      return Promise.reject(poolClosedError(this.address));
    }
    return new Promise<ProxyResponse>((resolve, reject) => {
      const ex = new Exchange(req, cancel, resolve, reject);
      cancel.onAbort((reason) => this.#cancelled(ex, reason));
      this.#dispatch(ex);
    });
  }

  release(conn: Http1Connection, reusable: boolean): void {
    this.#unhold(conn);
    if (!reusable || this.#spent(conn)) {
      conn.destroy();
      return;
    }
    const next = this.#nextPending();
    if (next !== undefined) {
      this.#start(conn, next);
      return;
    }
    if (this.#closing) {
      conn.destroy();
      return;
    }
    const now = this.#clock.now();
    const announced = conn.announcedKeepAlive;
    const ttl = announced === undefined ? this.#opts.keepAliveTimeout : Math.min(announced - ANNOUNCED_TIMEOUT_MARGIN, this.#opts.keepAliveTimeout);
    if (ttl <= 0) {
      conn.destroy();
      return;
    }
    conn.expiresAt = now + ttl;
    this.#idle.push(conn);
    if (this.#sweepTimer === undefined) this.#scheduleSweep(ttl);
  }

  replayStale(ex: Exchange): boolean {
    const ctx = ex.req.context;
    if (this.#closing || replayed.has(ctx)) return false;
    replayed.add(ctx);
    ex.replayable = false;
    this.onStaleReplay?.(ex.req.context.cluster);
    // Not through the idle list: its other connections may be as stale as the one that just failed.
    this.#start(this.#connect(), ex);
    return true;
  }

  closed(conn: Http1Connection): void {
    this.#unhold(conn);
    this.#conns.delete(conn);
    this.#open--;
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    // A slot is free: a waiting exchange gets a new connection.
    const next = this.#open < this.#opts.maxConnections ? this.#nextPending() : undefined;
    if (next !== undefined) this.#start(this.#connect(), next);
    else if (this.#closing && this.#open === 0) this.#whenClosed?.();
  }

  /**
   * Lets queued and in-flight exchanges finish, then closes every connection. Idempotent: the registry and a retiring
   * snapshot may both close the same pool, and both must see it closed.
   */
  close(): Promise<void> {
    if (this.#closed !== undefined) return this.#closed;
    this.#closing = true;
    if (this.#sweepTimer !== undefined) clearTimeout(this.#sweepTimer);
    if (this.#reclaimTimer !== undefined) clearTimeout(this.#reclaimTimer);
    for (const conn of this.#idle.splice(0)) conn.destroy();
    this.#closed = this.#open === 0 ? Promise.resolve() : new Promise<void>((resolve) => (this.#whenClosed = resolve));
    return this.#closed;
  }

  #dispatch(ex: Exchange): void {
    const conn = this.#takeIdle();
    if (conn !== undefined) this.#start(conn, ex);
    else if (this.#open < this.#opts.maxConnections) this.#start(this.#connect(), ex);
    else this.#enqueue(ex);
  }

  /** Every connection is busy: the exchange waits for one, unless its downstream already holds its share while others wait. */
  #enqueue(ex: Exchange): void {
    const ctx = ex.req.context;
    const key = ctx.downstreamConnection;
    const fair = this.#fair;
    if (fair !== undefined) {
      if (!fair.mayQueue(key)) {
        const err = new ProxyError(
          'UO',
          `downstream fairness: this downstream connection holds ${fair.held(key)} of ${this.#opts.maxConnections} connections to ${this.address} ` +
            `(max_share_per_downstream ${fair.share}) while another downstream waits for one`,
          { endpoint: this.address },
        );
        ex.fail(() => err, () => err);
        return;
      }
      fair.queued(key);
    }
    this.#pending.push(ex);
    ctx.poolWait = this.#waitOf(this.#clock.now());
    if (fair !== undefined && fair.held(key) < fair.limit) this.#reclaim();
  }

  /**
   * A downstream under its share waits: cut, for each such waiter, a connection that is being wasted on another
   * downstream (its slot goes to the waiter, fair handoff):
   * - its downstream holds its share or more and has left the response unread for reclaim_stalled_after (DWT);
   * - or its downstream has been uploading the request body for reclaim_stalled_after at under
   *   reclaim_upload_min_rate bytes/s, whatever its share (408 SI): many slow uploads, one connection each, would
   *   otherwise hold the whole pool (each under its share) for as long as they like.
   * Longest-wasted first. A holder not past the grace yet is looked at again when it would be.
   */
  #reclaim(): void {
    const fair = this.#fair;
    const grace = this.#opts.reclaimStalledAfter;
    const minRate = this.#opts.reclaimUploadMinRate;
    if (fair === undefined || grace <= 0 || this.#closing || (!fair.anyAtLimit && minRate <= 0)) return;
    let waiters = 0;
    for (const ex of this.#pending) if (fair.held(keyOf(ex)) < fair.limit) waiters++;
    if (waiters === 0) return;
    const now = this.#clock.now();
    const wasted: Array<{ conn: Http1Connection; since: number; err: () => ProxyError }> = [];
    let next = Infinity;
    for (const conn of this.#conns) {
      if (conn.exchange === undefined) continue;
      const rate = minRate > 0 ? conn.uploadRate(now, grace) : undefined;
      if (rate !== undefined && rate < minRate) {
        wasted.push({ conn, since: 0, err: () => new ProxyError(
          'SI',
          `request cut to free a pooled connection for another downstream: its body came at ${rate.toFixed(1)} bytes/s, under ` +
            `reclaim_upload_min_rate ${minRate} bytes/s, while ${this.#open}/${this.#opts.maxConnections} connections to ${this.address} were in use`,
          { status: 408, endpoint: this.address },
        ) });
        continue;
      }
      if (conn.pausedAt === 0 || fair.held(conn.downstream) < fair.limit) continue;
      if (now - conn.pausedAt >= grace) {
        const pausedFor = Math.round(now - conn.pausedAt);
        wasted.push({ conn, since: conn.pausedAt, err: () => new ProxyError(
          'DWT',
          `response cut to free a pooled connection for another downstream: its downstream connection holds ${fair.held(conn.downstream)} of ` +
            `${this.#opts.maxConnections} connections to ${this.address} (max_share_per_downstream ${fair.share}) and left this response unread for ` +
            `${pausedFor}ms (reclaim_stalled_after ${grace}ms)`,
          { endpoint: this.address },
        ) });
      } else next = Math.min(next, conn.pausedAt + grace);
    }
    wasted.sort((a, b) => a.since - b.since);
    for (const { conn, err } of wasted.slice(0, waiters)) {
      conn.pausedAt = 0;
      conn.fail(err());
    }
    // Waiters left over: look again when the next holder would be past the grace (at the latest one grace from now:
    // an upload's rate is judged afresh then).
    if (wasted.length < waiters && this.#reclaimTimer === undefined) {
      this.#reclaimTimer = setTimeout(() => {
        this.#reclaimTimer = undefined;
        this.#reclaim();
      }, Math.max(1, Math.ceil(Math.min(next, now + grace) - now)));
      this.#reclaimTimer.unref();
    }
  }

  /** What a queued exchange waits for, as a timeout tells it. */
  #waitOf(since: number): PoolWait {
    return { since, endpoint: this.address, describe: () => `no upstream connection free: ${this.#open}/${this.#opts.maxConnections} in use` };
  }

  #start(conn: Http1Connection, ex: Exchange): void {
    const fair = this.#fair;
    if (fair !== undefined) {
      const key = ex.req.context.downstreamConnection;
      conn.downstream = key;
      fair.hold(key);
    }
    conn.start(ex);
  }

  #unhold(conn: Http1Connection): void {
    const key = conn.downstream;
    if (key === undefined) return;
    conn.downstream = undefined;
    this.#fair?.unhold(key);
  }

  #takeIdle(): Http1Connection | undefined {
    const idle = this.#idle;
    if (idle.length === 0) return undefined;
    const now = this.#clock.now();
    let conn: Http1Connection | undefined;
    while ((conn = idle.pop()) !== undefined) {
      if (conn.expiresAt > now && !conn.closed) return conn;
      conn.destroy();
    }
    return undefined;
  }

  #connect(): Http1Connection {
    this.#open++;
    const conn = new Http1Connection(this, this.#connection);
    this.#conns.add(conn);
    return conn;
  }

  #nextPending(): Exchange | undefined {
    const pending = this.#pending;
    if (pending.length === 0) return undefined;
    const fair = this.#fair;
    const at = fair === undefined ? 0 : fair.pick(pending, keyOf);
    const ex = at === 0 ? pending.shift()! : pending.splice(at, 1)[0]!;
    this.#left(ex);
    return ex;
  }

  /** The exchange is out of the queue (served or cancelled). */
  #left(ex: Exchange): void {
    const ctx = ex.req.context;
    ctx.poolWait = undefined;
    this.#fair?.dequeued(ctx.downstreamConnection);
  }

  #spent(conn: Http1Connection): boolean {
    const max = this.#opts.maxRequestsPerConnection;
    return max > 0 && conn.uses >= max;
  }

  #cancelled(ex: Exchange, reason: Error): void {
    const conn = ex.conn;
    if (conn !== undefined) {
      conn.abort(ex, reason);
      return;
    }
    const i = this.#pending.indexOf(ex);
    if (i < 0) return;
    this.#pending.splice(i, 1);
    this.#left(ex);
    ex.fail(
      () => reason,
      () => reason,
    );
  }

  #scheduleSweep(ms: number): void {
    this.#sweepTimer = setTimeout(this.#sweep, Math.ceil(ms));
    this.#sweepTimer.unref();
  }

  /** Closes idle connections past their time, and comes back for the next one to expire. */
  readonly #sweep = (): void => {
    this.#sweepTimer = undefined;
    const now = this.#clock.now();
    let next = Infinity;
    for (const conn of [...this.#idle]) {
      if (conn.expiresAt <= now) conn.destroy();
      else next = Math.min(next, conn.expiresAt);
    }
    if (next !== Infinity) this.#scheduleSweep(next - now);
  };
}
