// The catalogue of response flags: Envoy's short codes, each with the status it maps to and a plain-words meaning.
export const RESPONSE_FLAGS = {
  NR: { status: 404, meaning: 'no route matched the request' },
  UH: { status: 503, meaning: 'no healthy upstream endpoint in the cluster' },
  UF: { status: 503, meaning: 'upstream connection failure' },
  UTE: { status: 503, meaning: 'upstream TLS failure: handshake failed or certificate refused (expired, wrong CA, name or identity mismatch)' },
  UT: { status: 504, meaning: 'upstream request timeout' },
  UQ: { status: 504, meaning: 'no upstream connection free before the timeout (waited in the pool queue)' },
  UC: { status: 503, meaning: 'upstream connection terminated' },
  UR: { status: 502, meaning: 'upstream reset the stream' },
  UPE: { status: 502, meaning: 'upstream protocol error' },
  UO: { status: 503, meaning: 'upstream overflow (circuit breaker or pool limit)' },
  URX: { status: 503, meaning: 'upstream retry limit exceeded' },
  DC: { status: 499, meaning: 'downstream connection terminated' },
  DPE: { status: 400, meaning: 'downstream protocol error' },
  SI: { status: 408, meaning: 'request body idle timeout: the downstream stopped sending the body' },
  DWT: { status: 499, meaning: 'response write timeout: the downstream stopped reading the response (cut, or its pooled connection reclaimed)' },
  LR: { status: 503, meaning: 'connection local reset (draining)' },
  FI: { status: 503, meaning: 'fault injected' },
  RL: { status: 429, meaning: 'rate limited' },
  RLSE: { status: 503, meaning: 'rate limit service error: the global rate limit store (Redis) was unreachable and the filter fails closed' },
  LS: { status: 503, meaning: 'load shed by adaptive concurrency' },
  UAEX: { status: 403, meaning: 'unauthorized' },
  UAN: { status: 401, meaning: 'unauthenticated: missing or invalid credentials' },
  RBAC: { status: 403, meaning: 'denied by an authorization policy' },
  FP: { status: 403, meaning: 'forward proxy destination not allowed' },
  TL: { status: 413, meaning: 'request body over the limit' },
  IE: { status: 500, meaning: 'internal error' },
  LD: { status: 508, meaning: 'loop detected: the request already passed through this sidecar (Via)' },
} as const;

export type ResponseFlag = keyof typeof RESPONSE_FLAGS;

/** The response header carrying the flag, and the one carrying the cause in plain words. */
export const FLAG_HEADER = 'x-sidecar-flag';
export const ERROR_HEADER = 'x-sidecar-error';
