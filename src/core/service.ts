// The one interface every concern plugs into: a request goes in, a response (with a streamed body) comes out.
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Cancellation } from './cancel.js';
import type { HeaderList } from './headers.js';
import type { AttemptOutcome, FailureCode, ProxyError } from './errors.js';
import type { ResponseFlag } from './flags.js';

export type HttpService = (req: ProxyRequest) => Promise<ProxyResponse>;
export type Layer = (next: HttpService) => HttpService;

/** Applies layers outermost-first: compose([a, b], svc) = a(b(svc)). */
export const compose = (layers: readonly Layer[], terminal: HttpService): HttpService =>
  layers.reduceRight<HttpService>((next, layer) => layer(next), terminal);

export interface ProxyRequest {
  method: string;
  /** host[:port] the request is for; what the upstream sees as Host / :authority. */
  authority: string;
  /** Origin-form path with query, e.g. /a/b?c=1. */
  path: string;
  scheme: 'http' | 'https';
  /** Request headers with hop-by-hop headers already removed. */
  readonly headers: HeaderList;
  /** The streamed request body, or null when the request has none. */
  body: Readable | null;
  /** Declared body length, or -1 when unknown (chunked / HTTP/2 without content-length). */
  contentLength: number;
  /** Trailers of the request body, when it can carry any (chunked HTTP/1.1, HTTP/2); shared by every attempt. */
  trailers?: TrailerSlot | undefined;
  /** Cancelled when the downstream goes away or a timeout fires. */
  readonly cancel: Cancellation;
  readonly context: RequestContext;
  /** Set only on an Upgrade or CONNECT: the downstream side the tunnel terminal joins (see listener/tunnel-terminal.ts). */
  readonly tunnel?: TunnelSlot | undefined;
}

/**
 * What a tunnel terminal needs from the downstream adapter: the raw socket (held paused: nothing of it may reach the
 * upstream before the protocol switched), and what to do once the upstream has answered.
 */
export interface TunnelSlot {
  readonly downstream: Socket;
  /** What the client asked for in Upgrade ('' for CONNECT). */
  readonly asked: string;
  readonly http10: boolean;
  /** The upstream switched (101, or CONNECT's connection established): the adapter splices the two sockets. */
  onSwitched(upstream: Socket, rest: Buffer): void;
  /** The upstream declined with a final response, already relayed downstream (or cut short by `err`). */
  onRelayed(status: number, bodyBytes: number, err: ProxyError | undefined): void;
}

/** Filled in by the downstream adapter by the time the downstream body ends; read by the upstream when it ends. */
export interface TrailerSlot {
  fields: HeaderList | undefined;
}

/**
 * A response body: a stream, or the whole body as one Buffer when it was complete on arrival (small upstream
 * responses, local answers), which spares the stream machinery on the hot path. See core/body.ts for helpers.
 */
export type ResponseBody = Readable | Buffer;

export interface ProxyResponse {
  status: number;
  readonly headers: HeaderList;
  body: ResponseBody | null;
  /** Trailers, filled in by the time `body` ends. */
  trailers?: HeaderList | undefined;
}

/** What the stages of the pipeline learn about a request, for logs, metrics and later stages. */
export interface RequestContext {
  readonly requestId: string;
  readonly startTime: number;
  readonly listener: string;
  readonly downstreamAddress: string;
  readonly downstreamProtocol: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';
  /** The scheme the downstream connection speaks, given by its listener ('https' once listeners terminate TLS). */
  readonly scheme: 'http' | 'https';
  /** The downstream peer's verified identity (e.g. a SPIFFE ID from its client certificate); unset without mTLS. */
  peerIdentity?: string | undefined;
  /**
   * The request came from another sidecar (the hop marker x-sidecar-hop, trusted by the listener's hop_marker rule:
   * from a verified identity where the listener verifies client certificates). Its x-sidecar-timeout is honoured.
   */
  fromSidecar: boolean;
  /** The claims of the request's verified JWT (jwt_authn), for authorization; unset without one. */
  jwtClaims?: Readonly<Record<string, unknown>> | undefined;
  /** Query parameters holding a credential (a token or key read from the query): the access log masks their values. */
  redactQuery?: string[] | undefined;
  /** The name of the request's verified API key (api_key), for authorization and the access log; unset without one. */
  apiKeyName?: string | undefined;
  /** The verified identity (SPIFFE ID) of the upstream's certificate on a TLS cluster; unset otherwise. */
  upstreamIdentity?: string | undefined;
  route: string;
  cluster: string;
  /** host:port of the last endpoint tried. */
  endpoint: string;
  attempts: number;
  flag: ResponseFlag | undefined;
  /** Plain-words cause of a proxy-generated response. */
  error: string | undefined;
  /** For an answer caused by a failed upstream attempt: how far it got and what happened (access log). */
  upstreamOutcome?: AttemptOutcome | undefined;
  upstreamCause?: FailureCode | undefined;
  /** Absolute time (clock ms) by which the request must be answered; Infinity when none. */
  deadline: number;
  /**
   * The downstream connection the request came on (HTTP/1.1 socket or HTTP/2 session); upstream pools share their
   * connections fairly between these. undefined for requests of no connection.
   */
  readonly downstreamConnection: object | undefined;
  /** Set while an attempt waits in a pool's queue for a free upstream connection, so a timeout can say so. */
  poolWait: PoolWait | undefined;
  /**
   * A gRPC call's final status code (trailers, a trailers-only head, or the sidecar's own answer), set when the
   * exchange closes; undefined for requests that are not gRPC (access log grpc_status, gRPC metrics).
   */
  grpcStatus?: number | undefined;
  /**
   * What the hop's payload handling did (routes[].protobuf_bodies, hop_compression), e.g. "pb:req pb:res br:res" or
   * "schema-mismatch:<theirs>!=<ours>"; access log hop_payload, printed only when set.
   */
  hopPayload?: string | undefined;
  /** The trace this request belongs to (32 hex digits), set by the tracing filter; unset without one (access log trace_id). */
  traceId?: string | undefined;
  /** The sidecar's SERVER span of this request (16 hex digits), set by the tracing filter (access log span_id). */
  spanId?: string | undefined;
  /** The request's spans (tracing filter): the per-attempt layer opens a client span per upstream attempt through it. */
  spans?: RequestSpans | undefined;
  /**
   * Set by a per-attempt layer just before it calls the cluster and taken by the cluster at once (synchronously, so
   * concurrent hedges cannot mix them up): told when that attempt ends. Why not wrap the attempt's promise and add a
   * 'close' listener of its own: the cluster already watches both, so this is one promise and one listener fewer per
   * attempt.
   */
  attemptObserver?: AttemptObserver | undefined;
  /** Attempts and decisions noted for admin /debug/requests; only allocated while that recorder is enabled. */
  trace?: RequestTrace | undefined;
}

/** Told when one upstream attempt ends: its status (or the failure's), the failure, and the response body (null without one). */
export interface AttemptObserver {
  attemptEnded(status: number, failure: unknown, body: ResponseBody | null): void;
}

/**
 * A request's tracing, as the per-attempt layer and the exchange see it: attempt() sends one upstream attempt as a
 * client span of the request, with the propagation headers naming that span; end() closes the request's span when
 * its exchange is recorded (status, flag and cause as the access log has them).
 */
export interface RequestSpans {
  attempt(req: ProxyRequest, send: HttpService): Promise<ProxyResponse>;
  end(ctx: RequestContext, status: number): void;
}

/** An attempt waiting for a pooled upstream connection. */
export interface PoolWait {
  /** Clock ms when the wait began. */
  readonly since: number;
  /** What it waits for, now: e.g. "no upstream connection free: 128/128 in use". */
  describe(): string;
  /** The endpoint whose pool it waits in. */
  readonly endpoint: string;
}

/** One upstream attempt as the cluster saw it (admin /debug/requests). Times are ms relative to the request's start. */
export interface AttemptTrace {
  endpoint: string;
  start: number;
  duration: number;
  /** 'response <status>' or the failure's flag and cause. */
  outcome: string;
  status?: number | undefined;
  flag?: ResponseFlag | undefined;
  error?: string | undefined;
}

/** What a request's pipeline noted about it; only allocated while the request recorder is enabled. */
export interface RequestTrace {
  attempts: AttemptTrace[];
  decisions: string[];
}
