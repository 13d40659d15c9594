// Envoy-style access-log format strings (`%RESPONSE_CODE% %REQ(X-REQUEST-ID)%`), compiled once per config snapshot
// into a list of field getters, so a request only runs the getters and joins: no per-request parsing.
// access_log.format: text with access_log.text_format; the operators are listed in docs/access-log.md.
import type { AccessRecord } from './access-log.js';
import { headerValue, redactQuery } from './access-fields.js';
import { REDACTED, sensitiveHeaderSet } from './sensitive-headers.js';
import { suggestName } from '../config/suggest.js';

export { DEFAULT_SENSITIVE_HEADERS } from './sensitive-headers.js';

/** What a compiled format reads: the access record (its header lists by reference). */
export type FormatInput = AccessRecord;

type Getter = (r: FormatInput) => string;

const dash = (v: string | undefined): string => (v === undefined || v === '' ? '-' : v);

/** What clean() escapes: control characters (C0, DEL, C1: U+0085 is a line break to some readers), U+2028/9, `"` and `\`. */
const needsEscape = (c: number): boolean => c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029;

/**
 * Free text (paths, headers, user agents, error causes) escaped JSON-style: control characters, so a value can never
 * end the line or forge another one, and `"` and `\`, so a value in a quoted field ("%USER_AGENT%") cannot close it
 * and forge the fields after it. The common value has none and is returned as is after one scan.
 */
export function clean(v: string | undefined): string {
  if (v === undefined || v === '') return '-';
  for (let i = 0; i < v.length; i++) {
    if (needsEscape(v.charCodeAt(i))) return escapeText(v);
  }
  return v;
}

function escapeText(v: string): string {
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (!needsEscape(c)) out += v[i];
    else if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else out += `\\u${c.toString(16).padStart(4, '0')}`;
  }
  return out;
}

const pathOf = (r: FormatInput): string => (r.context.redactQuery === undefined ? r.path : redactQuery(r.path, r.context.redactQuery));

/** Wall-clock start of the request: the context's start is on the monotonic clock (performance.now()). */
const startIso = (r: FormatInput): string => new Date(Math.round(performance.timeOrigin + r.context.startTime)).toISOString();

/** The supported operators without arguments; REQ(h) and RESP(h) are handled apart. */
export const OPERATORS: Readonly<Record<string, Getter>> = {
  START_TIME: startIso,
  METHOD: (r) => dash(r.method),
  PATH: (r) => clean(pathOf(r)),
  AUTHORITY: (r) => clean(r.authority),
  USER_AGENT: (r) => clean(r.userAgent),
  PROTOCOL: (r) => r.context.downstreamProtocol,
  RESPONSE_CODE: (r) => String(r.status),
  RESPONSE_FLAGS: (r) => dash(r.context.flag),
  RESPONSE_CODE_DETAILS: (r) => clean(r.context.error),
  GRPC_STATUS: (r) => (r.context.grpcStatus === undefined ? '-' : String(r.context.grpcStatus)),
  UPSTREAM_HOST: (r) => dash(r.context.endpoint),
  UPSTREAM_CLUSTER: (r) => dash(r.context.cluster),
  UPSTREAM_TRANSPORT_FAILURE_REASON: (r) => dash(r.context.upstreamCause),
  UPSTREAM_REQUEST_ATTEMPT_COUNT: (r) => String(r.context.attempts),
  UPSTREAM_ATTEMPTS: (r) => String(r.context.attempts),
  UPSTREAM_PEER_URI_SAN: (r) => clean(r.context.upstreamIdentity),
  ROUTE_NAME: (r) => dash(r.context.route),
  DURATION: (r) => String(Math.round(r.durationMs)),
  BYTES_RECEIVED: (r) => String(r.bytesIn),
  BYTES_SENT: (r) => String(r.bytesOut),
  DOWNSTREAM_REMOTE_ADDRESS: (r) => dash(r.context.downstreamAddress),
  DOWNSTREAM_PEER_URI_SAN: (r) => clean(r.context.peerIdentity),
  REQUEST_ID: (r) => clean(r.context.requestId),
  TRACE_ID: (r) => dash(r.context.traceId),
  SPAN_ID: (r) => dash(r.context.spanId),
  LISTENER: (r) => r.context.listener,
};

/** Envoy's pseudo-headers in %REQ(...)%: the request line's parts. */
const PSEUDO: Readonly<Record<string, Getter>> = {
  ':method': OPERATORS.METHOD!,
  ':path': OPERATORS.PATH!,
  ':authority': OPERATORS.AUTHORITY!,
  ':scheme': (r) => r.context.scheme,
};

export class FormatError extends Error {}

const BROKEN_OPERATOR = /%[A-Za-z_][A-Za-z0-9_]*[(:]/;

/** One header of %REQ(a?b)% / %RESP(a?b)%: the first name present wins (Envoy's alternative). */
function headerGetter(op: 'REQ' | 'RESP', arg: string, secret: ReadonlySet<string>): Getter {
  const names = arg.split('?').map((n) => n.trim().toLowerCase());
  if (names.some((n) => n === '')) throw new FormatError(`%${op}(${arg})% needs a header name${names.length > 1 ? ' on each side of ?' : ''}`);
  const one = names.map((name): ((r: FormatInput) => string | undefined) => {
    const pseudo = op === 'REQ' ? PSEUDO[name] : undefined;
    if (pseudo !== undefined) return pseudo;
    if (name.startsWith(':')) throw new FormatError(`%${op}(${name})%: unknown pseudo-header (${op === 'REQ' ? Object.keys(PSEUDO).join(', ') : 'none for responses'})`);
    const sensitive = secret.has(name);
    return op === 'REQ'
      ? (r) => { const v = headerValue(r.requestHeaders, name); return v === undefined ? undefined : sensitive ? REDACTED : clean(v); }
      : (r) => { const v = headerValue(r.responseHeaders, name); return v === undefined ? undefined : sensitive ? REDACTED : clean(v); };
  });
  if (one.length === 1) {
    const g = one[0]!;
    return (r) => dash(g(r));
  }
  return (r) => {
    for (const g of one) {
      const v = g(r);
      if (v !== undefined && v !== '-') return v;
    }
    return '-';
  };
}

/** An escape that truncation cut in two (`\` of `\"`, `\u00` of `\u0085`): it would escape the field's closing quote. */
const HALF_ESCAPE = /\\+(u[0-9a-f]{0,3})?$/;
function dropHalfEscape(s: string): string {
  const m = HALF_ESCAPE.exec(s);
  if (m === null) return s;
  const slashes = m[0].length - (m[1]?.length ?? 0);
  return slashes % 2 === 1 ? s.slice(0, m.index + slashes - 1) : s;
}

/** Truncates a getter's value to `max` characters (Envoy's `%REQ(h):N%`), never inside an escape. */
const truncated = (g: Getter, max: number): Getter => (r) => {
  const v = g(r);
  return v.length > max ? dropHalfEscape(v.slice(0, max)) : v;
};

/**
 * Compiles `format` into a line function (newline added). Throws FormatError naming the unknown operator; the config
 * schema prefixes the YAML path. Headers in `sensitive` print as `[redacted]` when present.
 */
export function compileFormat(format: string, sensitive: ReadonlySet<string> = sensitiveHeaderSet()): (r: FormatInput) => string {
  const parts: (string | Getter)[] = [];
  const re = /%([A-Za-z_][A-Za-z0-9_]*)(?:\(([^)]*)\))?(?::(\d+))?%/g;
  // The line ends with one newline, added here: a format written with its own (YAML "...\n") does not get two.
  format = format.endsWith('\n') ? format.slice(0, -1) : format;
  let last = 0;
  const text = (t: string): void => {
    // `%NAME(` or `%NAME:` that the operator pattern did not take: a header or length never closed, a typo.
    const broken = BROKEN_OPERATOR.exec(t);
    if (broken !== null) throw new FormatError(`malformed access-log operator near "${t.slice(broken.index, broken.index + 24)}" (expected %NAME%, %NAME(arg)% or %NAME:N%)`);
    parts.push(t);
  };
  for (let m = re.exec(format); m !== null; m = re.exec(format)) {
    if (m.index > last) text(format.slice(last, m.index));
    last = re.lastIndex;
    const op = m[1]!;
    const arg = m[2];
    const max = m[3] === undefined ? undefined : Number(m[3]);
    let g: Getter | undefined;
    if (op === 'REQ' || op === 'RESP') {
      if (arg === undefined || arg.trim() === '') throw new FormatError(`%${op}(header)% needs a header name`);
      g = headerGetter(op, arg, sensitive);
    } else {
      g = OPERATORS[op];
      if (g === undefined) throw new FormatError(`unknown access-log operator %${op}${arg === undefined ? '' : `(${arg})`}%${suggestName(op, [...Object.keys(OPERATORS), 'REQ', 'RESP'])}`);
      if (arg !== undefined) throw new FormatError(`%${op}% takes no argument (got %${op}(${arg})%)`);
    }
    if (max !== undefined) {
      if (!(max > 0)) throw new FormatError(`%${op}${arg === undefined ? '' : `(${arg})`}:${m[3]}%: the length must be at least 1`);
      g = truncated(g, max);
    }
    parts.push(g);
  }
  if (last < format.length) text(format.slice(last));
  // Text alone, no operator: one constant line.
  if (parts.every((p) => typeof p === 'string')) {
    const text = `${parts.join('')}\n`;
    return () => text;
  }
  return (r) => {
    let s = '';
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      s += typeof p === 'string' ? p : p(r);
    }
    return s + '\n';
  };
}
