// The access log: one JSON line per request, built by hand (known fields) and written through a buffered async stream.
import { LineWriter } from './line-writer.js';
import type { RequestContext } from '../core/service.js';

export interface AccessRecord {
  readonly context: RequestContext;
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationMs: number;
  readonly userAgent: string | undefined;
}

export interface AccessLog {
  write(r: AccessRecord): void;
  /** Writes out what is buffered and stops the periodic flush. */
  close(): void;
  /** Lines dropped because the destination could not keep up. */
  dropped(): number;
  /** Opens the file path again (log rotation); no-op for stdout/stderr. */
  reopen(): void;
}

export const noAccessLog: AccessLog = { write() {}, close() {}, dropped: () => 0, reopen() {} };

export function createAccessLog(path: string): AccessLog & { readonly writer: LineWriter } {
  const writer = new LineWriter(path);
  return {
    writer,
    write(r) {
      writer.write(formatAccessLine(r));
    },
    close() {
      writer.close();
    },
    dropped: () => writer.dropped,
    reopen() {
      writer.reopen();
    },
  };
}

// toISOString costs more than the rest of the line; requests finishing in the same millisecond share it.
let lastMs = 0;
let lastIso = '';
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/**
 * A JSON string literal for `v` (null when absent). A character scan decides whether escaping is needed: measured in
 * the running proxy, a RegExp test per field cost more than the rest of the line together.
 */
export function jsonString(v: string | undefined): string {
  if (v === undefined) return 'null';
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return JSON.stringify(v);
  }
  return `"${v}"`;
}

/**
 * Fields with few distinct values (listener, route, cluster, endpoint, peer address, flag) are quoted once and then
 * looked up: no scan and no new string per line. Bounded, so a stream of distinct values cannot grow it without end.
 */
const quotedCache = new Map<string, string>();
const QUOTED_CACHE_MAX = 4096;
function quoted(v: string | undefined): string {
  if (v === undefined || v === '') return 'null';
  let q = quotedCache.get(v);
  if (q === undefined) {
    q = jsonString(v);
    if (quotedCache.size < QUOTED_CACHE_MAX) quotedCache.set(v, q);
  }
  return q;
}

/** Milliseconds with three decimals, from integer microseconds (cheaper than a fractional number's shortest form). */
function millis(ms: number): string {
  const us = Math.round(ms * 1000);
  if (!(us >= 0)) return '0'; // never NaN or negative in a JSON line
  const frac = us % 1000;
  return `${(us - frac) / 1000}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

/**
 * Runs of fields that change together and rarely (time and listener; route, cluster and endpoint; peer) are joined
 * once and reused while their inputs stay the same: a line is then about twenty pieces instead of forty-odd.
 */
const head = { iso: '', listener: '', text: '' };
const target = { route: '', cluster: '', endpoint: '', text: '' };
const peer = { address: '', text: '' };

function headPart(c: RequestContext): string {
  const iso = isoNow();
  if (iso !== head.iso || c.listener !== head.listener) {
    head.iso = iso;
    head.listener = c.listener;
    head.text = `{"time":"${iso}","listener":${quoted(c.listener)},"request_id":`;
  }
  return head.text;
}

function targetPart(c: RequestContext): string {
  if (c.route !== target.route || c.cluster !== target.cluster || c.endpoint !== target.endpoint) {
    target.route = c.route;
    target.cluster = c.cluster;
    target.endpoint = c.endpoint;
    target.text = `,"route":${quoted(c.route)},"cluster":${quoted(c.cluster)},"upstream":${quoted(c.endpoint)},"attempts":`;
  }
  return target.text;
}

function peerPart(c: RequestContext): string {
  if (c.downstreamAddress !== peer.address) {
    peer.address = c.downstreamAddress;
    peer.text = `,"downstream":${quoted(c.downstreamAddress)},"user_agent":`;
  }
  return peer.text;
}

/** The closing identities: few distinct values (the mesh's workloads), and most lines repeat the last pair. */
const identities = { peer: undefined as string | undefined, upstream: undefined as string | undefined, key: undefined as string | undefined, text: ',"peer_identity":null,"upstream_identity":null,"api_key":null}\n' };

function identityPart(c: RequestContext): string {
  const p = c.peerIdentity;
  const u = c.upstreamIdentity;
  const k = c.apiKeyName;
  if (p !== identities.peer || u !== identities.upstream || k !== identities.key) {
    identities.peer = p;
    identities.upstream = u;
    identities.key = k;
    identities.text = `,"peer_identity":${quoted(p)},"upstream_identity":${quoted(u)},"api_key":${k === undefined ? 'null' : jsonString(k)}}\n`;
  }
  return identities.text;
}

const NO_FLAG = ',"response_flag":null,"error":null,"upstream_outcome":null,"upstream_cause":null';

/** The path with the values of the named query parameters replaced by `[redacted]` (credentials never reach the log). */
export function redactQuery(path: string, names: readonly string[]): string {
  const q = path.indexOf('?');
  if (q < 0) return path;
  const parts = path.slice(q + 1).split('&').map((kv) => {
    const i = kv.indexOf('=');
    const k = i < 0 ? kv : kv.slice(0, i);
    let name = k;
    try {
      name = decodeURIComponent(k.replace(/\+/g, ' '));
    } catch {
      // keep the raw name
    }
    return names.includes(name) ? `${k}=[redacted]` : kv;
  });
  return `${path.slice(0, q)}?${parts.join('&')}`;
}

export function formatAccessLine(r: AccessRecord): string {
  const c = r.context;
  const path = c.redactQuery === undefined ? r.path : redactQuery(r.path, c.redactQuery);
  const outcome =
    c.flag === undefined && c.error === undefined
      ? NO_FLAG
      : `,"response_flag":${quoted(c.flag)},"error":${jsonString(c.error)},"upstream_outcome":${quoted(c.upstreamOutcome)},"upstream_cause":${quoted(c.upstreamCause)}`;
  return (
    headPart(c) + jsonString(c.requestId) +
    ',"method":' + jsonString(r.method) + ',"authority":' + jsonString(r.authority) + ',"path":' + jsonString(path) +
    ',"protocol":"' + c.downstreamProtocol + '","status":' + r.status + ',"grpc_status":' + (c.grpcStatus ?? 'null') + ',"bytes_in":' + r.bytesIn + ',"bytes_out":' + r.bytesOut +
    ',"duration_ms":' + millis(r.durationMs) + targetPart(c) + c.attempts + outcome + peerPart(c) + jsonString(r.userAgent) +
    (c.hopPayload === undefined ? '' : ',"hop_payload":' + jsonString(c.hopPayload)) +
    (c.traceId === undefined ? '' : ',"trace_id":"' + c.traceId + '","span_id":"' + c.spanId + '"') +
    identityPart(c)
  );
}
