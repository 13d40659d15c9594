// ProxyError: a failure the proxy answers itself, with a status, a response flag, a cause a person can read, and
// for upstream attempts how far the attempt got and a cause code that policies and logs read instead of the text.
import { RESPONSE_FLAGS, type ResponseFlag } from './flags.js';

/**
 * How far a failed upstream attempt got on the wire, which is what decides whether replaying it is safe:
 * - not-sent: no byte of the request reached the upstream application (connect failed or timed out, HTTP/2
 *   REFUSED_STREAM or a stream past a GOAWAY's last id, a pool already closed);
 * - possibly-accepted: the request was at least partly written and no response head came back; the upstream may
 *   have acted on it;
 * - response-started: a response head had arrived when the attempt failed (reset, idle timeout or bad framing
 *   mid-body).
 */
export type AttemptOutcome = 'not-sent' | 'possibly-accepted' | 'response-started';

/** What happened to a failed upstream attempt, as a stable code (access log `upstream_cause`). */
export type FailureCode =
  /** The connect failed, for a reason not named below. */
  | 'connect-failed'
  | 'connect-refused'
  | 'connect-timeout'
  | 'dns-failure'
  | 'unreachable'
  | 'refused-stream'
  | 'pool-closed'
  /** The TLS handshake failed or the upstream's certificate was refused (expired, wrong CA, name or identity mismatch). */
  | 'tls-failure'
  /** The connection closed or was reset under the attempt. */
  | 'connection-closed'
  /** The HTTP/2 stream was reset (a code other than REFUSED_STREAM). */
  | 'stream-reset'
  | 'protocol-error'
  /** No response (or no body bytes) in time: per-try or stream idle timeout. */
  | 'timeout';

export interface ProxyErrorOptions {
  readonly status?: number | undefined;
  readonly endpoint?: string | undefined;
  readonly cause?: unknown;
  /** Defaults by flag (see DEFAULT_UPSTREAM_FAILURE); undefined for failures that are not an upstream attempt's. */
  readonly outcome?: AttemptOutcome | undefined;
  readonly code?: FailureCode | undefined;
  /** The attempt count the message already states ("attempt n/m"), so nobody appends another. */
  readonly attempts?: number | undefined;
  /** Extra response headers for the local answer (name, value, name, value...), e.g. Retry-After on a 429. */
  readonly headers?: readonly string[] | undefined;
}

/**
 * What an upstream failure built with only a flag is taken to mean: the code that raises it knows better and says so.
 * Flags absent here are not upstream attempt failures (no route, breaker overflow, bad request...).
 */
const DEFAULT_UPSTREAM_FAILURE: Partial<Record<ResponseFlag, { readonly outcome: AttemptOutcome; readonly code: FailureCode }>> = {
  UF: { outcome: 'not-sent', code: 'connect-failed' },
  UTE: { outcome: 'not-sent', code: 'tls-failure' },
  UC: { outcome: 'possibly-accepted', code: 'connection-closed' },
  UR: { outcome: 'possibly-accepted', code: 'stream-reset' },
  UPE: { outcome: 'possibly-accepted', code: 'protocol-error' },
  UT: { outcome: 'possibly-accepted', code: 'timeout' },
};

export class ProxyError extends Error {
  readonly flag: ResponseFlag;
  readonly status: number;
  /** The upstream endpoint involved, when there is one. */
  readonly endpoint: string | undefined;
  /** How far the failed upstream attempt got; undefined when the failure is not an upstream attempt's. */
  readonly outcome: AttemptOutcome | undefined;
  /** What happened to the upstream attempt; undefined exactly when `outcome` is. */
  readonly code: FailureCode | undefined;
  /** Set when the message already says "attempt n/m". */
  readonly attempts: number | undefined;
  /** Extra response headers of the local answer (name, value, ...). */
  readonly headers: readonly string[] | undefined;

  constructor(flag: ResponseFlag, detail: string, opts: ProxyErrorOptions = {}) {
    super(detail, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ProxyError';
    this.flag = flag;
    this.status = opts.status ?? RESPONSE_FLAGS[flag].status;
    this.endpoint = opts.endpoint;
    const d = opts.outcome === undefined ? DEFAULT_UPSTREAM_FAILURE[flag] : undefined;
    this.outcome = opts.outcome ?? d?.outcome;
    this.code = opts.outcome === undefined ? d?.code : opts.code;
    this.attempts = opts.attempts;
    this.headers = opts.headers;
  }
}

export const isProxyError = (e: unknown): e is ProxyError => e instanceof ProxyError;
