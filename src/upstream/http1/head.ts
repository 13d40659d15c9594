// Serialises the head of an upstream HTTP/1.1 request. Pure. Everything that goes on the wire is checked here,
// whatever produced it (a downstream parser, an HTTP/2 peer, a header edit from config): a CR or LF that slipped
// into a value would split the request in two (request smuggling towards the upstream).

/** RFC 9110 token: methods and header names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field values: visible ASCII, space, tab and obs-text; no CR, LF, NUL or other controls. */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Request targets and authorities: no whitespace or controls at all. */
const INVALID_TARGET = /[^\x21-\x7e\x80-\xff]/;

export class InvalidRequestHeadError extends Error {}

/**
 * The request line and header block, ending with the blank line. `headers` are flat lower-case pairs. Host is written
 * first from `authority`; `framing` (from framingFor) is the only body framing sent: any `host` or `content-length`
 * pair in `headers` is skipped, so the wire can never carry two framings (the downstream's Transfer-Encoding was
 * already removed as hop-by-hop).
 */
export function requestHead(method: string, path: string, authority: string, headers: readonly string[], framing: string): string {
  if (!TOKEN.test(method)) throw new InvalidRequestHeadError(`invalid method ${JSON.stringify(method)}`);
  if (path.length === 0 || INVALID_TARGET.test(path)) throw new InvalidRequestHeadError(`invalid request target ${JSON.stringify(path)}`);
  if (authority.length === 0 || INVALID_TARGET.test(authority)) throw new InvalidRequestHeadError(`invalid authority ${JSON.stringify(authority)}`);
  let head = method + ' ' + path + ' HTTP/1.1\r\nhost: ' + authority + '\r\n';
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name === 'host' || name === 'content-length') continue;
    const value = headers[i + 1]!;
    if (!TOKEN.test(name)) throw new InvalidRequestHeadError(`invalid header name ${JSON.stringify(name)}`);
    if (INVALID_VALUE.test(value)) throw new InvalidRequestHeadError(`invalid value for header ${name}`);
    head += name + ': ' + value + '\r\n';
  }
  return head + framing + '\r\n';
}

const FRAMING_CHUNKED = 'transfer-encoding: chunked\r\n';
/** For a bodiless POST, PUT or PATCH: many servers answer 411 Length Required without it. */
const FRAMING_EMPTY = 'content-length: 0\r\n';
const EXPECTS_BODY = new Set(['POST', 'PUT', 'PATCH']);

/**
 * The framing header line of a request: its declared length, chunked when the length is unknown, and for a request
 * without a body `content-length: 0` where one is expected (POST, PUT, PATCH, or a Content-Length was given).
 */
export function framingFor(method: string, hasBody: boolean, contentLength: number, headers: readonly string[]): string {
  if (hasBody) return contentLength >= 0 ? 'content-length: ' + contentLength + '\r\n' : FRAMING_CHUNKED;
  if (EXPECTS_BODY.has(method)) return FRAMING_EMPTY;
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'content-length') return FRAMING_EMPTY;
  return '';
}

/** The chunk-size line that precedes `length` bytes of a chunked body. */
export const chunkHeader = (length: number): string => length.toString(16) + '\r\n';
export const CHUNK_END = '\r\n';
/** The last chunk of a chunked body, with no trailers. */
export const LAST_CHUNK = '0\r\n\r\n';

/** The last chunk with trailer fields (flat lower-case pairs), each checked like a header. */
export function lastChunk(trailers: readonly string[]): string {
  let out = '0\r\n';
  for (let i = 0; i < trailers.length; i += 2) {
    const name = trailers[i]!;
    const value = trailers[i + 1]!;
    if (!TOKEN.test(name)) throw new InvalidRequestHeadError(`invalid trailer name ${JSON.stringify(name)}`);
    if (INVALID_VALUE.test(value)) throw new InvalidRequestHeadError(`invalid value for trailer ${name}`);
    out += name + ': ' + value + '\r\n';
  }
  return out + '\r\n';
}

/** The last Keep-Alive value seen and what it announced: an upstream sends the same value on every response. */
let lastKeepAlive = '';
let lastAnnounced: number | undefined;

/**
 * The idle time an upstream announces in `Keep-Alive: timeout=N` (seconds), in milliseconds, or undefined when it
 * announces none.
 */
export function announcedKeepAlive(value: string): number | undefined {
  if (value === lastKeepAlive) return lastAnnounced;
  const m = /(?:^|[,;\s])timeout\s*=\s*"?(\d+)/i.exec(value);
  lastKeepAlive = value;
  lastAnnounced = m ? Number(m[1]) * 1000 : undefined;
  return lastAnnounced;
}
