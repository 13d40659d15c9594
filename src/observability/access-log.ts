// The access log: one line per request (JSON by default, ECS or a format string on request), built by hand and
// written through a buffered async stream. What a config asks for is compiled once per config snapshot into a line
// function and an optional filter, so the default path stays one hand-built JSON line and nothing more.
import { LineWriter } from './line-writer.js';
import type { HeaderList } from '../core/headers.js';
import type { RequestContext } from '../core/service.js';
import type { Config } from '../config/schema.js';
import { isoNow, jsonString, loggedHeader, millis, quoted, redactQuery } from './access-fields.js';
import { compileFormat } from './access-format.js';
import { encodeAccessLine, encodedBound, loggedPath } from './access-encode.js';
import { compileEcs } from './access-ecs.js';
import { compileFilter, type AccessFilter, type AccessKeep } from './access-sampling.js';
import { credentialHeaders, sensitiveHeaderSet } from './sensitive-headers.js';

export { jsonString, redactQuery };

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
  /**
   * The request's headers (as the filters left them) and the response's, by reference: read only by a format that
   * logs chosen headers (access_log.request_headers, %REQ(h)%), never copied per request.
   */
  readonly requestHeaders?: HeaderList | undefined;
  readonly responseHeaders?: HeaderList | undefined;
}

/** What access_log asks for, as the line compilers take it. */
export interface AccessLogOptions {
  readonly format: 'json' | 'ecs' | 'text';
  /** The Envoy-style format string of format `text`. */
  readonly textFormat?: string | undefined;
  /** Header names (any case) logged in the json and ecs formats. */
  readonly requestHeaders?: readonly string[] | undefined;
  readonly responseHeaders?: readonly string[] | undefined;
  /** Added to DEFAULT_SENSITIVE_HEADERS: these headers' values are never logged. */
  readonly sensitiveHeaders?: readonly string[] | undefined;
  /** ECS service.name. */
  readonly serviceName?: string | undefined;
  readonly filter?: AccessFilter | undefined;
}

export const DEFAULT_ACCESS_LOG: AccessLogOptions = { format: 'json' };

/** Default text format: Envoy's default access-log format with the sidecar's ids at the end. */
export const DEFAULT_TEXT_FORMAT =
  '[%START_TIME%] "%METHOD% %PATH% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "%DOWNSTREAM_REMOTE_ADDRESS%" "%USER_AGENT%" "%REQUEST_ID%" "%AUTHORITY%" "%UPSTREAM_HOST%" %TRACE_ID%';

/** A compiled access_log: the line function, and the filter (undefined keeps every line without a test). */
export interface CompiledAccessLog {
  readonly line: (r: AccessRecord) => string;
  readonly keep: AccessKeep | undefined;
  /**
   * The line is the default JSON one (formatAccessLine, no chosen headers): the writer may encode it straight into its
   * chunk (access-encode.ts) rather than build the string.
   */
  readonly direct?: boolean | undefined;
}

/** Compiles the options; throws FormatError (access-format.ts) for a bad format string. */
export function compileAccessLog(o: AccessLogOptions): CompiledAccessLog {
  const secret = sensitiveHeaderSet(o.sensitiveHeaders);
  const keep = o.filter === undefined ? undefined : compileFilter(o.filter);
  if (o.format === 'text') return { line: compileFormat(o.textFormat ?? DEFAULT_TEXT_FORMAT, secret), keep };
  const req = o.requestHeaders ?? [];
  const res = o.responseHeaders ?? [];
  if (o.format === 'ecs') return { line: compileEcs({ requestHeaders: req, responseHeaders: res, sensitive: secret, serviceName: o.serviceName }), keep };
  if (req.length === 0 && res.length === 0) return { line: formatAccessLine, keep, direct: true };
  const reqPart = headersPart('request_headers', req, secret, (r) => r.requestHeaders);
  const resPart = headersPart('response_headers', res, secret, (r) => r.responseHeaders);
  return { line: (r) => formatAccessLine(r, reqPart(r) + resPart(r)), keep };
}

/** `,"<key>":{"name":"value",...}` for the chosen headers (null when absent); '' when none are chosen. */
export function headersPart(key: string, names: readonly string[], secret: ReadonlySet<string>, pick: (r: AccessRecord) => HeaderList | undefined): (r: AccessRecord) => string {
  if (names.length === 0) return () => '';
  const fields = names.map((n) => {
    const name = n.toLowerCase();
    return { name, prefix: `${jsonString(name)}:`, sensitive: secret.has(name) };
  });
  const open = `,${jsonString(key)}:{`;
  return (r) => {
    const h = pick(r);
    let s = open;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i]!;
      s += (i === 0 ? '' : ',') + f.prefix + jsonString(loggedHeader(h, f.name, f.sensitive));
    }
    return s + '}';
  };
}

export interface AccessLog {
  write(r: AccessRecord): void;
  /** Writes out what is buffered and stops the periodic flush. */
  close(): void;
  /** Lines dropped because the destination could not keep up. */
  dropped(): number;
  /** Opens the file path again (log rotation); no-op for stdout/stderr. */
  reopen(): void;
  /** Takes a new config snapshot's compiled format and filter; the destination stays open. */
  configure(c: CompiledAccessLog): void;
}

export const noAccessLog: AccessLog = { write() {}, close() {}, dropped: () => 0, reopen() {}, configure() {} };

/** The config block as the compilers take it; the headers the credential filters read are sensitive too. */
export function accessLogOptions(config: Config): AccessLogOptions {
  const c = config.access_log;
  const f = c.filter;
  return {
    format: c.format,
    textFormat: c.text_format,
    requestHeaders: c.request_headers,
    responseHeaders: c.response_headers,
    sensitiveHeaders: [...c.sensitive_headers, ...credentialHeaders(config)],
    serviceName: c.service_name,
    filter: f === undefined ? undefined : { onlyErrors: f.only_errors, minDurationMs: f.slower_than, ratio: f.ratio },
  };
}

export interface ConfiguredAccessLog extends AccessLog {
  readonly writer: LineWriter;
}

export function createAccessLog(path: string, compiled: CompiledAccessLog = compileAccessLog(DEFAULT_ACCESS_LOG)): ConfiguredAccessLog {
  const writer = new LineWriter(path);
  let line = compiled.line;
  let keep = compiled.keep;
  let direct = compiled.direct === true;
  return {
    writer,
    write(r) {
      if (keep !== undefined && !keep(r.status, r.context.flag, r.durationMs, r.context.requestId)) return;
      if (!direct) return writer.write(line(r));
      const path = loggedPath(r);
      const chunk = writer.reserve(encodedBound(r, path));
      if (chunk !== undefined) writer.commit(encodeAccessLine(r, path, chunk, writer.offset));
    },
    configure(c) {
      line = c.line;
      keep = c.keep;
      direct = c.direct === true;
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

/**
 * Runs of fields that change together and rarely (time and listener; route, cluster and endpoint; peer) are joined
 * once and reused while their inputs stay the same: a line is then about twenty pieces instead of forty-odd.
 */
const head = { iso: '', listener: undefined as string | undefined, text: '' };
// Inputs start undefined (no string equals it): the first line builds each part, even for empty values.
const target = { route: undefined as string | undefined, cluster: undefined as string | undefined, endpoint: undefined as string | undefined, text: '' };
const peer = { address: undefined as string | undefined, text: '' };

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

/**
 * The default JSON line. `extra` (the chosen headers) goes before the closing identities; trace_id and span_id
 * appear when tracing set them.
 */
export function formatAccessLine(r: AccessRecord, extra = ''): string {
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
    // Trace and span ids are lower-case hex from the tracer (or a parsed traceparent): no escaping needed.
    (c.traceId === undefined ? '' : ',"trace_id":"' + c.traceId + '","span_id":"' + c.spanId + '"') +
    extra +
    identityPart(c)
  );
}
