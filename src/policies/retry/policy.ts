// Retry classification: decides from an attempt's outcome, the route's retry_on and the method whether to retry.

/**
 * What is known about how far an attempt got, which is what decides whether replaying it is safe.
 * - not-sent: no byte of the request reached the upstream application (TCP connect failed, HTTP/2 REFUSED_STREAM,
 *   or a pooled keep-alive socket that the server had already closed before we wrote anything).
 * - possibly-accepted: the request was at least partly written and then the stream reset or the per-try timeout
 *   fired; the upstream may have acted on it.
 * - response: a response head arrived, so the upstream certainly saw the request.
 */
export type AttemptOutcome =
  | { readonly kind: 'not-sent'; readonly cause: NotSentCause }
  | { readonly kind: 'possibly-accepted'; readonly reason: 'reset' | 'timeout' }
  | { readonly kind: 'response'; readonly status: number; readonly headers: (name: string) => string | undefined };

export type NotSentCause = 'connect-failure' | 'refused-stream' | 'stale-connection';

/** Envoy retry_on names. 'retriable-4xx' (409 only) is Envoy's too, beyond the usual set. */
export type RetryOn =
  | 'connect-failure'
  | 'refused-stream'
  | 'reset'
  | '5xx'
  | 'gateway-error'
  | 'retriable-4xx'
  | 'retriable-status-codes'
  | 'retriable-headers'
  | GrpcRetryOn;

/** Envoy's `retry_on` gRPC conditions, by the grpc-status value each one names. */
export const GRPC_RETRY_ON = {
  cancelled: '1',
  'deadline-exceeded': '4',
  'resource-exhausted': '8',
  internal: '13',
  unavailable: '14',
} as const;

export type GrpcRetryOn = keyof typeof GRPC_RETRY_ON;

/** The grpc-status values a retry_on list names (empty when it names none: responses are then not looked at for them). */
export function grpcRetryCodes(retryOn: Iterable<string>): ReadonlyMap<string, GrpcRetryOn> {
  const codes = new Map<string, GrpcRetryOn>();
  for (const r of retryOn) if (Object.hasOwn(GRPC_RETRY_ON, r)) codes.set(GRPC_RETRY_ON[r as GrpcRetryOn], r as GrpcRetryOn);
  return codes;
}

export interface RetryHeaderMatcher {
  /** Response header name (matched case-insensitively: it is looked up lower-cased). */
  readonly name: string;
  /** Exact value to match; absent means "header is present". */
  readonly exact?: string;
}

export interface RetryClassifierConfig {
  readonly retryOn: ReadonlySet<RetryOn>;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly retriableHeaders: ReadonlyArray<RetryHeaderMatcher>;
  /** Request method, compared case-sensitively as RFC 9110 requires ("post" is not POST). */
  readonly method: string;
  readonly idempotentMethods: ReadonlySet<string>;
  /** Operator opt-in to replay methods that may not be idempotent once the upstream may have seen them. */
  readonly allowNonIdempotent: boolean;
  /** The request carries an Idempotency-Key header (IETF httpapi draft) ... */
  readonly hasIdempotencyKey: boolean;
  /** ... and the route trusts that header to make a replay safe. */
  readonly idempotencyKeyAllowed: boolean;
  /** grpc-status values (in the response head: trailers-only answers) that retry_on names; see grpcRetryCodes. */
  readonly grpcCodes?: ReadonlyMap<string, GrpcRetryOn> | undefined;
}

export interface RetryDecision {
  readonly retry: boolean;
  /** Short, bounded label for metrics: what triggered the retry, or why not. */
  readonly reason: string;
}

/** RFC 9110 idempotent methods (TRACE left out: nobody should be proxying it). */
export const DEFAULT_IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/** A config with nothing enabled, to spread overrides onto. */
export function retryClassifierConfig(overrides: Partial<RetryClassifierConfig> = {}): RetryClassifierConfig {
  return {
    retryOn: new Set(),
    retriableStatusCodes: new Set(),
    retriableHeaders: [],
    method: 'GET',
    idempotentMethods: DEFAULT_IDEMPOTENT_METHODS,
    allowNonIdempotent: false,
    hasIdempotencyKey: false,
    idempotencyKeyAllowed: false,
    ...overrides,
  };
}

export function isGatewayError(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}

export function is5xx(status: number): boolean {
  return status >= 500 && status <= 599;
}

/**
 * Commit-aware retry decision.
 *
 * A 'not-sent' attempt is replayable for every method, POST included, because the upstream never saw it:
 * stale-connection always (the keep-alive race is our pool's fault, not a failure of the upstream), the other
 * causes when retry_on asks for them. As in Envoy, 'reset', '5xx' and 'gateway-error' also cover connect
 * failures and refused streams, since the router would have answered those with a 503 itself.
 *
 * Anything the upstream may have seen is only replayed for idempotent methods, unless the operator opted in
 * (allowNonIdempotent) or the client made the replay safe with an Idempotency-Key the route honours.
 */
export function shouldRetry(outcome: AttemptOutcome, cfg: RetryClassifierConfig): RetryDecision {
  const on = cfg.retryOn;
  switch (outcome.kind) {
    case 'not-sent': {
      const cause = outcome.cause;
      if (cause === 'stale-connection') return yes(cause);
      const wider = on.has('reset') || on.has('5xx') || on.has('gateway-error');
      return on.has(cause) || wider ? yes(cause) : no('not-retriable');
    }
    case 'possibly-accepted': {
      // Envoy: resets and per-try timeouts count as "would have been a 5xx", so 5xx and gateway-error cover them.
      if (!(on.has('reset') || on.has('5xx') || on.has('gateway-error'))) return no('not-retriable');
      return gateIdempotency(outcome.reason, cfg);
    }
    case 'response': {
      // gRPC calls are all POSTs: naming a gRPC code is the operator saying such an answer is safe to replay (as
      // gRPC's own retry policy and Envoy's retry_on: grpc conditions take it), so no idempotency gate.
      const grpc = cfg.grpcCodes;
      if (grpc !== undefined && grpc.size > 0) {
        const code = outcome.headers('grpc-status');
        const name = code === undefined ? undefined : grpc.get(code);
        if (name !== undefined) return yes(`grpc-${name}`);
      }
      const trigger = responseTrigger(outcome.status, outcome.headers, cfg);
      return trigger === undefined ? no('not-retriable') : gateIdempotency(trigger, cfg);
    }
  }
}

/** First matching retry_on condition for a response, most specific first so labels say as much as possible. */
function responseTrigger(status: number, headers: (name: string) => string | undefined, cfg: RetryClassifierConfig): string | undefined {
  const on = cfg.retryOn;
  // The label carries the code, but only codes the operator listed, so the label set stays bounded.
  if (on.has('retriable-status-codes') && cfg.retriableStatusCodes.has(status)) return `status-${status}`;
  if (on.has('gateway-error') && isGatewayError(status)) return 'gateway-error';
  if (on.has('5xx') && is5xx(status)) return '5xx';
  if (on.has('retriable-4xx') && status === 409) return 'retriable-4xx';
  if (on.has('retriable-headers')) {
    for (const m of cfg.retriableHeaders) {
      const v = headers(m.name.toLowerCase());
      if (v !== undefined && (m.exact === undefined || v === m.exact)) return 'retriable-header';
    }
  }
  return undefined;
}

function gateIdempotency(trigger: string, cfg: RetryClassifierConfig): RetryDecision {
  if (cfg.idempotentMethods.has(cfg.method)) return yes(trigger);
  if (cfg.allowNonIdempotent) return yes(trigger);
  if (cfg.hasIdempotencyKey && cfg.idempotencyKeyAllowed) return yes(trigger);
  return no('non-idempotent');
}

function yes(reason: string): RetryDecision {
  return { retry: true, reason };
}

function no(reason: string): RetryDecision {
  return { retry: false, reason };
}
