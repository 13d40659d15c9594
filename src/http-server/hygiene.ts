// Request-head hygiene, pure: strict framing checks, hop-by-hop removal and X-Forwarded-* headers.
// Node's llhttp already rejects most smuggling shapes (CL+TE, bad chunk sizes, obs-fold, bare LF, CTLs);
// this covers what it lets through: Host rules, transfer codings other than chunked, TE on HTTP/1.0, odd targets.
import { HeaderList } from '../core/headers.js';

/** Always hop-by-hop (RFC 9110 §7.6.1), plus the legacy proxy ones. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'upgrade', 'proxy-authorization', 'trailer',
  'proxy-authenticate', 'http2-settings',
]);

export const isHopByHop = (name: string): boolean => HOP_BY_HOP.has(name);

export interface RequestHead {
  /** Lower-cased upstream headers in flat pairs, without Host and hop-by-hop headers. */
  headers: string[];
  host: string | undefined;
  requestId: string | undefined;
  contentLength: number; // -1 when not given
  chunked: boolean;
  expectContinue: boolean;
  /** The value of Upgrade when the client asked for a protocol upgrade. */
  upgrade: string | undefined;
  /** The client's TE included "trailers" (gRPC needs it passed on). */
  teTrailers: boolean;
  /** The Via header(s), joined; kept in `headers` too. */
  via: string | undefined;
}

export interface HeadError {
  status: 400 | 417 | 431 | 501;
  message: string;
}

const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::\d{0,5})?$/;

/**
 * Reads raw header pairs once. Returns an error for anything ambiguous; the caller answers it and closes the connection.
 * `http2` relaxes rules that only apply to HTTP/1.x framing.
 */
export function readRequestHead(rawHeaders: readonly string[], httpVersion: string, http2: boolean, maxHeaders: number): RequestHead | HeadError {
  const headers: string[] = [];
  let fields = 0;
  let host: string | undefined;
  let hostCount = 0;
  let connection: string | undefined;
  let te: string | undefined;
  let transferEncoding: string | undefined;
  let contentLength = -1;
  let requestId: string | undefined;
  let expect: string | undefined;
  let upgrade: string | undefined;
  let via: string | undefined;

  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!;
    if (name.charCodeAt(0) === 58 /* ':' */) continue; // HTTP/2 pseudo-headers are read separately
    fields++;
    switch (name) {
      case 'host':
        hostCount++;
        host = value;
        continue;
      case 'connection':
        connection = connection === undefined ? value : `${connection},${value}`;
        continue;
      case 'transfer-encoding':
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding},${value}`;
        continue;
      case 'te':
        te = te === undefined ? value : `${te},${value}`;
        continue;
      case 'upgrade':
        upgrade = value;
        continue;
      case 'via':
        via = via === undefined ? value : `${via}, ${value}`;
        break;
      case 'expect':
        expect = value;
        continue;
      case 'content-length':
        // llhttp has already rejected duplicates and non-digits; HTTP/2 gets the same check here.
        if (contentLength !== -1 || !/^\d+$/.test(value)) return { status: 400, message: 'invalid or duplicate Content-Length' };
        contentLength = Number(value);
        break;
      case 'x-request-id':
        requestId = value;
        break;
      default:
        if (HOP_BY_HOP.has(name)) continue;
    }
    headers.push(name, value);
  }

  if (fields > maxHeaders) return { status: 431, message: `request has ${fields} header fields, over max_headers_count ${maxHeaders}` };
  if (!http2) {
    if (hostCount > 1) return { status: 400, message: 'duplicate Host header' };
    if (hostCount === 0 && httpVersion !== '1.0') return { status: 400, message: 'missing Host header' };
  } else if (hostCount > 1) return { status: 400, message: 'duplicate Host header' };
  if (host !== undefined && !HOST_VALUE.test(host)) return { status: 400, message: 'invalid Host header' };

  let chunked = false;
  if (transferEncoding !== undefined) {
    if (http2) return { status: 400, message: 'Transfer-Encoding is not allowed in HTTP/2' };
    if (httpVersion === '1.0') return { status: 400, message: 'Transfer-Encoding in an HTTP/1.0 request' };
    if (transferEncoding.trim().toLowerCase() !== 'chunked') {
      return { status: 501, message: `unsupported Transfer-Encoding "${transferEncoding}"` };
    }
    chunked = true;
  }

  // Headers the Connection header names are hop-by-hop too.
  let wantsUpgrade = false;
  if (connection !== undefined) {
    for (const token of connection.split(',')) {
      const t = token.trim().toLowerCase();
      if (t === '' || t === 'close' || t === 'keep-alive') continue;
      if (t === 'upgrade') {
        wantsUpgrade = true;
        continue;
      }
      for (let i = 0; i < headers.length; i += 2) {
        if (headers[i] === t) {
          headers.splice(i, 2);
          i -= 2;
        }
      }
    }
  }

  let expectContinue = false;
  if (expect !== undefined) {
    if (expect.trim().toLowerCase() !== '100-continue') return { status: 417, message: `unsupported Expect "${expect}"` };
    expectContinue = true;
  }

  return {
    headers,
    host,
    requestId,
    contentLength,
    chunked,
    expectContinue,
    upgrade: wantsUpgrade ? upgrade : undefined,
    teTrailers: te !== undefined && /(^|,)\s*trailers\s*(;|,|$)/i.test(te),
    via,
  };
}

export const isHeadError = (h: RequestHead | HeadError): h is HeadError => 'status' in h;

/**
 * Fields a request trailer may not carry (RFC 9110 6.5.1): framing, routing, authentication, content handling and
 * hop-by-hop fields. A recipient may drop them; the sidecar does, so a trailer can never redo what the head decided.
 */
const NOT_IN_TRAILERS = new Set([
  ...HOP_BY_HOP, 'content-length', 'host', 'authorization', 'cookie', 'expect', 'max-forwards', 'range',
  'content-encoding', 'content-type', 'content-range', 'cache-control', 'pragma',
]);

/** The request trailers worth forwarding, as a HeaderList (lower-case names), or undefined when none are left. */
export function requestTrailers(raw: readonly string[]): HeaderList | undefined {
  let out: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (NOT_IN_TRAILERS.has(name) || name.charCodeAt(0) === 58 /* ':' */) continue;
    (out ??= []).push(name, raw[i + 1]!);
  }
  return out === undefined ? undefined : new HeaderList(out);
}

/** Removes hop-by-hop headers from a response, including those its Connection header names. */
export function cleanResponseHeaders(raw: string[]): void {
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (HOP_BY_HOP.has(name) && name !== 'trailer') {
      if (name === 'connection') connection = raw[i + 1];
      raw.splice(i, 2);
      i -= 2;
    }
  }
  if (connection === undefined) return;
  for (const token of connection.split(',')) {
    const t = token.trim().toLowerCase();
    if (t === '' || t === 'close' || t === 'keep-alive') continue;
    for (let i = 0; i < raw.length; i += 2) {
      if (raw[i] === t) {
        raw.splice(i, 2);
        i -= 2;
      }
    }
  }
}

/** Parses an absolute-form target (http://host:port/path?q) as sent to a forward proxy. */
export function parseAbsoluteTarget(target: string): { scheme: 'http' | 'https'; authority: string; path: string } | undefined {
  const m = /^(https?):\/\/([^/?#\s@]+)([^#\s]*)/i.exec(target);
  // The authority ends at the first / or ?; anything else there (userinfo's "@", a fragment) is not a target we forward.
  if (!m || (m[3] !== '' && m[3]!.charCodeAt(0) !== 47 && m[3]!.charCodeAt(0) !== 63) || m[0].length !== target.length) return undefined;
  const path = m[3] === '' ? '/' : m[3]!.startsWith('?') ? `/${m[3]}` : m[3]!;
  return { scheme: m[1]!.toLowerCase() as 'http' | 'https', authority: m[2]!.toLowerCase(), path };
}
