// The connection to one upstream endpoint: sends one attempt of a request, resolves with the response head and a streamed body.
import type { Cancellation } from '../core/cancel.js';
import type { ProxyRequest, ProxyResponse } from '../core/service.js';

export interface Upstream {
  /** host:port */
  readonly address: string;
  request(req: ProxyRequest, cancel: Cancellation): Promise<ProxyResponse>;
  /** Finishes in-flight requests, then closes connections. */
  close(): Promise<void>;
  /** Connections currently open (for /clusters and tests). */
  readonly connections: number;
}

export interface UpstreamOptions {
  readonly address: string;
  readonly connectTimeout: number;
  readonly maxConnections: number;
  readonly keepAliveTimeout: number;
  readonly maxRequestsPerConnection: number;
  readonly streamIdleTimeout: number;
  /** h2c: streams on one connection before another is opened (the peer's SETTINGS may lower it). */
  readonly maxConcurrentStreams: number;
  /** HTTP/2: PING a session this often (ms; 0: never). */
  readonly h2KeepaliveInterval: number;
  /** HTTP/2: a PING unanswered this long (ms) closes its session. */
  readonly h2KeepaliveTimeout: number;
  /** HTTP/1.1: share of the pool one downstream connection may hold while others wait (1: no limit). */
  readonly maxSharePerDownstream: number;
  /** HTTP/1.1, under contention: how long a downstream at its share may leave a response unread before its connection is reclaimed (0: never). */
  readonly reclaimStalledAfter: number;
  /** HTTP/1.1, under contention: an upload slower than this (bytes/s) for reclaimStalledAfter is cut with 408 (0: never). */
  readonly reclaimUploadMinRate: number;
}

export function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':');
  let host = address.slice(0, colon);
  if (host.startsWith('[')) host = host.slice(1, -1);
  return { host, port: Number(address.slice(colon + 1)) };
}
