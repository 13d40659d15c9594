// The transcoder's own answers, as JSON in gRPC's error shape {code, message, details} (JSON clients read no grpc-status).
import { ProxyError } from '../../core/errors.js';
import { ERROR_HEADER, FLAG_HEADER, RESPONSE_FLAGS, type ResponseFlag } from '../../core/flags.js';
import { HeaderList } from '../../core/headers.js';
import type { ProxyResponse, RequestContext } from '../../core/service.js';
import { codeOfHttp } from './status.js';

/** A JSON error body {code, message, details} in gRPC's shape; the status follows the code. */
export function jsonErrorResponse(status: number, code: number, message: string, details: unknown[], extra: readonly string[] = []): ProxyResponse {
  const body = Buffer.from(`${JSON.stringify({ code, message, details })}\n`);
  const headers = new HeaderList(['content-type', 'application/json', 'content-length', String(body.length), ...extra]);
  return { status, headers, body };
}

/**
 * An answer the sidecar makes itself (no binding, a body that does not fit, an upstream refused or too slow), as JSON
 * for a JSON client, with the flag and cause in the context and the usual headers. An upstream failure's body says
 * only the flag's meaning: its cause names addresses, and stays in x-sidecar-error, which the exchange makes generic
 * on listeners that hide error details.
 */
export function localJson(ctx: RequestContext, err: unknown, upstream = false): ProxyResponse {
  const e = err instanceof ProxyError ? err : new ProxyError('IE', `internal error: ${(err as Error)?.message ?? String(err)}`);
  const flag: ResponseFlag = e.flag;
  ctx.flag = flag;
  ctx.error = e.message;
  ctx.upstreamOutcome = e.outcome;
  ctx.upstreamCause = e.code;
  if (e.endpoint) ctx.endpoint = e.endpoint;
  const cause = e.message.replace(/[\r\n]+/g, ' ');
  const said = upstream ? RESPONSE_FLAGS[flag].meaning : cause;
  return jsonErrorResponse(e.status, codeOfHttp(e.status), said, [], [FLAG_HEADER, flag, ERROR_HEADER, cause.replace(/[^\x20-\x7e]/g, '?').slice(0, 1000), 'x-request-id', ctx.requestId]);
}

