// The one renderer of answers the sidecar writes itself: plain text for plain clients, trailers-only for gRPC clients.
import { ERROR_HEADER, FLAG_HEADER, RESPONSE_FLAGS, type ResponseFlag } from '../core/flags.js';
import { HeaderList } from '../core/headers.js';
import type { ProxyResponse } from '../core/service.js';

/** What a local answer says, before it is shaped for its client. */
export interface LocalAnswer {
  readonly status: number;
  readonly flag: ResponseFlag;
  /** The cause as the caller may see it (already generic when the listener hides details). */
  readonly cause: string;
  /** Add the flag's meaning to the text body (off when the cause is the generic meaning already). */
  readonly withMeaning: boolean;
  readonly requestId?: string | undefined;
  /** The connection closes after this answer (malformed requests): HTTP/1.1 says so in Connection. */
  readonly close?: boolean | undefined;
  /** Extra response headers (flat name/value pairs), e.g. WWW-Authenticate of a 401. */
  readonly headers?: readonly string[] | undefined;
}

/** How a client wants errors: gRPC clients read grpc-status, not the HTTP status or a body. */
export type AnswerStyle = 'text' | 'grpc';

/** content-type application/grpc (and +proto, +json...) asks for gRPC-shaped answers. */
export const answerStyle = (contentType: string | undefined): AnswerStyle =>
  contentType !== undefined && contentType.startsWith('application/grpc') ? 'grpc' : 'text';

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 413: 'Payload Too Large', 414: 'URI Too Long', 417: 'Expectation Failed',
  429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 499: 'Client Closed Request', 500: 'Internal Server Error',
  501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout', 505: 'HTTP Version Not Supported', 508: 'Loop Detected',
};

export const statusText = (status: number): string => STATUS_TEXT[status] ?? '';

/** Header values cannot carry control characters or non-latin1 text. */
export const headerSafe = (s: string): string => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 1000);

/** The answer as a response, in the style its client asked for. */
export function renderLocal(a: LocalAnswer, style: AnswerStyle = 'text'): ProxyResponse {
  return style === 'grpc' ? renderGrpc(a) : renderText(a);
}

function renderText(a: LocalAnswer): ProxyResponse {
  const body = Buffer.from(`${a.status} ${statusText(a.status)}: ${a.cause} [${a.withMeaning ? `${a.flag}: ${RESPONSE_FLAGS[a.flag].meaning}` : a.flag}]\n`);
  const raw = ['content-type', 'text/plain; charset=utf-8', 'content-length', String(body.length)];
  if (a.close) raw.push('connection', 'close');
  raw.push(FLAG_HEADER, a.flag, ERROR_HEADER, headerSafe(a.cause));
  if (a.requestId !== undefined) raw.push('x-request-id', a.requestId);
  if (a.headers !== undefined) raw.push(...a.headers);
  return { status: a.status, headers: new HeaderList(raw), body };
}

/**
 * gRPC's trailers-only answer (HTTP 200, grpc-status and grpc-message in the one header block, no body), as Envoy
 * sends for its local replies to gRPC clients. grpc-message says the cause and the flag as the text body does;
 * x-sidecar-flag and x-sidecar-error are in the same block, so gRPC clients read them as trailing metadata.
 */
function renderGrpc(a: LocalAnswer): ProxyResponse {
  const raw = [
    'content-type', 'application/grpc',
    'grpc-status', String(grpcStatus(a.flag, a.status)),
    'grpc-message', grpcPercentEncode(`${a.cause} [${a.withMeaning ? `${a.flag}: ${RESPONSE_FLAGS[a.flag].meaning}` : a.flag}]`),
    FLAG_HEADER, a.flag,
    ERROR_HEADER, headerSafe(a.cause),
  ];
  if (a.requestId !== undefined) raw.push('x-request-id', a.requestId);
  if (a.headers !== undefined) raw.push(...a.headers);
  return { status: 200, headers: new HeaderList(raw), body: null };
}

/**
 * grpc-message's percent-encoding (gRPC over HTTP/2, "Status-Message"): UTF-8, with '%' and every byte outside
 * printable ASCII as %XX; the rest stays readable.
 */
export function grpcPercentEncode(s: string): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return s;
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

/** gRPC status codes (grpc/doc/statuscodes.md). */
export const GRPC = { CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;

const BY_FLAG: Partial<Record<ResponseFlag, number>> = {
  UF: GRPC.UNAVAILABLE, UH: GRPC.UNAVAILABLE, UO: GRPC.UNAVAILABLE, LS: GRPC.UNAVAILABLE, UC: GRPC.UNAVAILABLE, URX: GRPC.UNAVAILABLE, LR: GRPC.UNAVAILABLE, RL: GRPC.UNAVAILABLE,
  UT: GRPC.DEADLINE_EXCEEDED, UQ: GRPC.DEADLINE_EXCEEDED,
  NR: GRPC.UNIMPLEMENTED,
  FP: GRPC.PERMISSION_DENIED, UAEX: GRPC.PERMISSION_DENIED, RBAC: GRPC.PERMISSION_DENIED, UAN: GRPC.UNAUTHENTICATED,
  TL: GRPC.RESOURCE_EXHAUSTED,
  UR: GRPC.INTERNAL, UPE: GRPC.INTERNAL, IE: GRPC.INTERNAL, LD: GRPC.INTERNAL,
  // Never an answer (the client is gone): what its call ended as, for the metrics and access log.
  DC: GRPC.CANCELLED,
};

/**
 * The status a gRPC call ended with, once its exchange closed: grpc-status from the trailers or a trailers-only
 * head (the sidecar's own answers are those too); without one, from the flag or the HTTP status.
 */
export function finalGrpcStatus(res: ProxyResponse | undefined, flag: ResponseFlag | undefined, status: number): number {
  const v = res?.trailers?.get('grpc-status') ?? res?.headers.get('grpc-status');
  if (v !== undefined) {
    const n = Number(v);
    return Number.isInteger(n) && n >= 0 ? n : GRPC.UNKNOWN;
  }
  if (flag !== undefined) return grpcStatus(flag, status);
  return status === 200 ? GRPC.UNKNOWN : grpcFromHttp(status);
}

/** The gRPC code for a flag; a malformed request is INVALID_ARGUMENT, anything unmapped follows its HTTP status. */
export function grpcStatus(flag: ResponseFlag, status: number): number {
  const byFlag = BY_FLAG[flag];
  if (byFlag !== undefined) return byFlag;
  if (flag === 'DPE') return status < 500 ? GRPC.INVALID_ARGUMENT : GRPC.INTERNAL;
  // The rest (FI aborts with a chosen status) by the HTTP status.
  return grpcFromHttp(status);
}

/** gRPC's HTTP-to-gRPC mapping (doc/http-grpc-status-mapping.md), for an answer without grpc-status. */
export function grpcFromHttp(status: number): number {
  if (status === 401) return GRPC.UNAUTHENTICATED;
  if (status === 403) return GRPC.PERMISSION_DENIED;
  if (status === 404) return GRPC.UNIMPLEMENTED;
  if (status === 429 || status === 502 || status === 503 || status === 504) return GRPC.UNAVAILABLE;
  if (status === 400) return GRPC.INTERNAL;
  return GRPC.UNKNOWN;
}

/** The whole answer as HTTP/1.1 bytes, for sockets that no longer have a node:http response (parser errors, tunnels). */
export function http1Bytes(res: ProxyResponse): Buffer {
  let head = `HTTP/1.1 ${res.status} ${statusText(res.status)}\r\n`;
  const raw = res.headers.raw;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  const body = res.body;
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), Buffer.isBuffer(body) ? body : Buffer.alloc(0)]);
}
