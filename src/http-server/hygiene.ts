// Request-head hygiene, pure: strict framing checks, hop-by-hop removal and X-Forwarded-* headers.
// Node's llhttp already rejects most smuggling shapes (CL+TE, bad chunk sizes, obs-fold, bare LF, CTLs);
// this covers what it lets through: Host rules, transfer codings other than chunked, TE on HTTP/1.0, odd targets.
import { HeaderList, HOP_HEADER } from '../core/headers.js';

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
  /** The request carried the hop marker (x-sidecar-hop: 1). The header itself is never kept: it marks one hop only. */
  hop: boolean;
}

export interface HeadError {
  status: 400 | 417 | 431 | 501 | 505;
  message: string;
}

/** 1 for the characters of an RFC 3986 reg-name besides pct-encoding: unreserved and sub-delims. */
const REG_NAME = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=") REG_NAME[c.charCodeAt(0)] = 1;

const isHex = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);

/**
 * An RFC 3986 authority without userinfo, from a Host header, an absolute-form target or an HTTP/2 :authority: a
 * reg-name or IPv4 address, or an IPv6 literal in brackets, then an optional port of 1-5 digits up to 65535. An empty
 * host is refused too (an http URI always has one). A char-code scan, no allocation: it runs on every request.
 */
export function isValidAuthority(s: string): boolean {
  const n = s.length;
  let i = 0;
  if (n === 0) return false;
  if (s.charCodeAt(0) === 91 /* [ */) {
    let colons = 0;
    for (i = 1; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c === 93 /* ] */) break;
      if (c === 58 /* : */) colons++;
      else if (c !== 46 /* . */ && !isHex(c)) return false;
    }
    if (i === n || colons < 2) return false;
    i++;
  } else {
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c === 58 /* : */) break;
      if (c === 37 /* % */) {
        if (i + 2 >= n || !isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2))) return false;
        i += 2;
      } else if (c >= 128 || REG_NAME[c] !== 1) return false;
    }
    if (i === 0) return false;
  }
  if (i === n) return true;
  if (s.charCodeAt(i) !== 58 /* : */ || n - i - 1 < 1 || n - i - 1 > 5) return false;
  let port = 0;
  for (i++; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
    port = port * 10 + c - 48;
  }
  return port <= 65535;
}

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
  let hop = false;
  // llhttp reads any one-digit major version; only 1.x is HTTP/1 (HTTP/2 has its own parser and preface).
  if (!http2 && httpVersion.charCodeAt(0) !== 49 /* 1 */) return { status: 505, message: `HTTP version ${httpVersion} is not supported` };

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
      case HOP_HEADER:
        // Read here, in the one pass over the head, so the marker costs the hot path no lookup of its own.
        hop ||= value === '1';
        continue;
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
  if (host !== undefined && !isValidAuthority(host)) return { status: 400, message: `invalid Host header "${host.slice(0, 100)}"` };

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
    hop,
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
  if (!isValidAuthority(m[2]!)) return undefined;
  const path = m[3] === '' ? '/' : m[3]!.startsWith('?') ? `/${m[3]}` : m[3]!;
  return { scheme: m[1]!.toLowerCase() as 'http' | 'https', authority: m[2]!.toLowerCase(), path };
}

/**
 * Whether a head that overflowed max_header_bytes did so in its request line (414, not 431), judged from the read
 * node:http was parsing when it gave up (`packet` up to `at`): the line in progress, after the last LF there, reads
 * `METHOD SP target`, where a header line has a colon after its name. A line begun in an earlier read cannot be seen
 * there and counts as a header (431) unless the read itself begins like a request line.
 */
export function overflowedInRequestLine(packet: Buffer | undefined, at: number): boolean {
  if (!packet) return false;
  const end = Math.min(at, packet.length);
  const start = end > 0 ? packet.lastIndexOf(10, end - 1) + 1 : 0;
  let i = start;
  while (i < end && i - start <= 20 && ((packet[i]! >= 65 && packet[i]! <= 90) || packet[i] === 45 /* - */)) i++;
  return i > start && i + 1 < end && packet[i] === 32 /* SP */ && packet[i + 1] !== 32;
}
