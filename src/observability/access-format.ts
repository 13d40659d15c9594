// Envoy-style access-log format strings (`%RESPONSE_CODE% %REQ(X-REQUEST-ID)%`), compiled once per config snapshot
// into a list of field getters, so a request only runs the getters and joins: no per-request parsing.
// Not wired into the config yet (see docs/access-log.md "Format strings", planned).
import type { AccessRecord } from './access-log.js';

/** What a compiled format reads: the access record plus header lookups (lower-case names). */
export interface FormatInput extends AccessRecord {
  reqHeader(name: string): string | undefined;
  respHeader(name: string): string | undefined;
}

type Getter = (r: FormatInput) => string;

export const DEFAULT_SENSITIVE_HEADERS: readonly string[] = ['authorization', 'cookie', 'set-cookie', 'proxy-authorization', 'x-api-key'];

const dash = (v: string | undefined): string => (v === undefined || v === '' ? '-' : v);

/** The supported operators without arguments; REQ(h) and RESP(h) are handled apart. */
export const OPERATORS: Readonly<Record<string, Getter>> = {
  START_TIME: (r) => new Date(r.context.startTime).toISOString(),
  PROTOCOL: (r) => r.context.downstreamProtocol,
  RESPONSE_CODE: (r) => String(r.status),
  RESPONSE_FLAGS: (r) => dash(r.context.flag),
  UPSTREAM_HOST: (r) => dash(r.context.endpoint),
  UPSTREAM_CLUSTER: (r) => dash(r.context.cluster),
  ROUTE_NAME: (r) => dash(r.context.route),
  DURATION: (r) => String(Math.round(r.durationMs)),
  BYTES_RECEIVED: (r) => String(r.bytesIn),
  BYTES_SENT: (r) => String(r.bytesOut),
  DOWNSTREAM_REMOTE_ADDRESS: (r) => dash(r.context.downstreamAddress),
  REQUEST_ID: (r) => r.context.requestId,
  LISTENER: (r) => r.context.listener,
  UPSTREAM_ATTEMPTS: (r) => String(r.context.attempts),
};

export class FormatError extends Error {}

/**
 * Compiles `format` into a line function (newline added). Throws FormatError naming the unknown operator; the caller
 * prefixes the YAML path. Headers in `sensitive` print as `[redacted]`.
 */
export function compileFormat(format: string, sensitive: readonly string[] = DEFAULT_SENSITIVE_HEADERS): (r: FormatInput) => string {
  const secret = new Set(sensitive.map((h) => h.toLowerCase()));
  const parts: (string | Getter)[] = [];
  const re = /%([A-Z_]+)(?:\(([^)]*)\))?%/g;
  let last = 0;
  for (let m = re.exec(format); m !== null; m = re.exec(format)) {
    if (m.index > last) parts.push(format.slice(last, m.index));
    last = re.lastIndex;
    const op = m[1]!;
    const arg = m[2];
    if (op === 'REQ' || op === 'RESP') {
      if (arg === undefined || arg === '') throw new FormatError(`%${op}(header)% needs a header name`);
      const name = arg.toLowerCase();
      if (secret.has(name)) parts.push((r) => ((op === 'REQ' ? r.reqHeader(name) : r.respHeader(name)) === undefined ? '-' : '[redacted]'));
      else parts.push(op === 'REQ' ? (r) => dash(r.reqHeader(name)) : (r) => dash(r.respHeader(name)));
      continue;
    }
    const g = arg === undefined ? OPERATORS[op] : undefined;
    if (g === undefined) throw new FormatError(`unknown access-log operator %${op}${arg === undefined ? '' : `(${arg})`}%`);
    parts.push(g);
  }
  if (last < format.length) parts.push(format.slice(last));
  return (r) => {
    let s = '';
    for (const p of parts) s += typeof p === 'string' ? p : p(r);
    return s + '\n';
  };
}
