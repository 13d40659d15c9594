// access_log.format: ecs — the line under Elastic Common Schema field names, as nested objects (the form ECS
// documents and Filebeat's ndjson parser, Logstash's json codec and Fluentd's json parser take without a rename or
// dot-expander step). Hand-built like the default JSON line; absent values are left out rather than written as null.
import type { HeaderList } from '../core/headers.js';
import type { AccessRecord } from './access-log.js';
import { isoNow, jsonString, loggedHeader, quoted, redactQuery } from './access-fields.js';

/** The ECS version the field names follow (ecs.version in every line). */
export const ECS_VERSION = '8.11.0';

export interface EcsOptions {
  readonly requestHeaders: readonly string[];
  readonly responseHeaders: readonly string[];
  readonly sensitive: ReadonlySet<string>;
  /** service.name; the listener's name when unset. */
  readonly serviceName?: string | undefined;
}

const HTTP_VERSION = { 'HTTP/1.0': '"1.0"', 'HTTP/1.1': '"1.1"', 'HTTP/2': '"2"' } as const;

/** url.domain and url.port from host[:port] (an IPv6 literal keeps its brackets, as ECS asks). */
export function splitAuthority(authority: string): { domain: string; port: number | undefined } {
  const close = authority.startsWith('[') ? authority.indexOf(']') : -1;
  const colon = authority.indexOf(':', close < 0 ? 0 : close);
  if (colon < 0 || (close < 0 && authority.indexOf(':', colon + 1) >= 0)) return { domain: authority, port: undefined };
  const port = Number(authority.slice(colon + 1));
  return { domain: authority.slice(0, colon), port: Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined };
}

/** The last authority seen and its url part: most lines repeat it. */
const lastUrl = { authority: '\u0000', text: '' };
function domainPart(authority: string): string {
  if (authority !== lastUrl.authority) {
    const { domain, port } = splitAuthority(authority);
    lastUrl.authority = authority;
    lastUrl.text = domain === '' ? '' : `"domain":${jsonString(domain)},${port === undefined ? '' : `"port":${port},`}`;
  }
  return lastUrl.text;
}

function headersObject(key: string, names: readonly string[], secret: ReadonlySet<string>, pick: (r: AccessRecord) => HeaderList | undefined): (r: AccessRecord) => string {
  if (names.length === 0) return () => '';
  const fields = names.map((n) => {
    const name = n.toLowerCase();
    return { name, prefix: `${jsonString(name)}:`, sensitive: secret.has(name) };
  });
  return (r) => {
    const h = pick(r);
    let s = '';
    for (const f of fields) {
      const v = loggedHeader(h, f.name, f.sensitive);
      if (v !== undefined) s += (s === '' ? '' : ',') + f.prefix + jsonString(v);
    }
    return s === '' ? '' : `,${jsonString(key)}:{${s}}`;
  };
}

/** Compiles the ECS line function for one config snapshot. */
export function compileEcs(o: EcsOptions): (r: AccessRecord) => string {
  const service = o.serviceName === undefined ? undefined : `,"service":{"name":${jsonString(o.serviceName)}}`;
  const reqHeaders = headersObject('request_headers', o.requestHeaders, o.sensitive, (r) => r.requestHeaders);
  const resHeaders = headersObject('response_headers', o.responseHeaders, o.sensitive, (r) => r.responseHeaders);
  const opt = (key: string, v: string | undefined): string => (v === undefined || v === '' ? '' : `,"${key}":${jsonString(v)}`);
  const optQuoted = (key: string, v: string | undefined): string => (v === undefined || v === '' ? '' : `,"${key}":${quoted(v)}`);
  return (r) => {
    const c = r.context;
    const path = c.redactQuery === undefined ? r.path : redactQuery(r.path, c.redactQuery);
    const q = path.indexOf('?');
    const failed = r.status >= 400 || c.flag !== undefined;
    const ns = Math.round(r.durationMs * 1e6);
    return (
      `{"@timestamp":"${isoNow()}","ecs":{"version":"${ECS_VERSION}"}` +
      `,"event":{"kind":"event","category":["web"],"type":["access"],"dataset":"sidecar.access","duration":${ns >= 0 ? ns : 0},"outcome":"${failed ? 'failure' : 'success'}"}` +
      `,"http":{"version":${HTTP_VERSION[c.downstreamProtocol]},"request":{"id":${jsonString(c.requestId)},"method":${jsonString(r.method)},"body":{"bytes":${r.bytesIn}}}` +
      `,"response":{"status_code":${r.status},"body":{"bytes":${r.bytesOut}}}}` +
      `,"url":{${domainPart(r.authority)}"path":${jsonString(q < 0 ? path : path.slice(0, q))}${q < 0 ? '' : `,"query":${jsonString(path.slice(q + 1))}`},"original":${jsonString(path)}}` +
      `,"source":{"address":${quoted(c.downstreamAddress)}}` +
      (r.userAgent === undefined ? '' : `,"user_agent":{"original":${jsonString(r.userAgent)}}`) +
      (c.traceId === undefined ? '' : `,"trace":{"id":${jsonString(c.traceId)}}`) +
      (c.spanId === undefined ? '' : `,"span":{"id":${jsonString(c.spanId)}}`) +
      (service ?? `,"service":{"name":${quoted(c.listener)}}`) +
      (c.error === undefined ? '' : `,"error":{"message":${jsonString(c.error)}}`) +
      `,"sidecar":{"listener":${quoted(c.listener)}` +
      optQuoted('route', c.route) + optQuoted('cluster', c.cluster) + optQuoted('upstream', c.endpoint) +
      `,"attempts":${c.attempts}` +
      optQuoted('response_flag', c.flag) + optQuoted('upstream_outcome', c.upstreamOutcome) + optQuoted('upstream_cause', c.upstreamCause) +
      (c.grpcStatus === undefined ? '' : `,"grpc_status":${c.grpcStatus}`) +
      optQuoted('peer_identity', c.peerIdentity) + optQuoted('upstream_identity', c.upstreamIdentity) + opt('api_key', c.apiKeyName) + opt('hop_payload', c.hopPayload) +
      reqHeaders(r) + resHeaders(r) +
      '}}\n'
    );
  };
}
