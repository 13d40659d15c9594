// Test helper: a real OTLP/HTTP traces receiver. Decodes each POSTed ExportTraceServiceRequest with OpenTelemetry's
// own protocol definitions (test/fixtures/otlp, loaded with protobufjs) and keeps the spans, flattened.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import protobuf from 'protobufjs';
import { ROOT } from './sidecar.js';

const PROTOS = path.join(ROOT, 'test/fixtures/otlp');

export type AttrValue = string | number | boolean;

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** SPAN_KIND_SERVER, SPAN_KIND_CLIENT, ... */
  readonly kind: string;
  /** STATUS_CODE_UNSET, STATUS_CODE_ERROR, ... */
  readonly status: string;
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly attributes: Readonly<Record<string, AttrValue>>;
  /** The resource's service.name. */
  readonly service: string;
}

export interface OtlpReceiver {
  readonly port: number;
  /** http://127.0.0.1:<port>/v1/traces */
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Export requests received, with their content types. */
  readonly requests: string[];
  close(): Promise<void>;
}

interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string;
  doubleValue?: number;
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}
interface DecodedSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  parentSpanId?: Uint8Array;
  name: string;
  kind?: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: KeyValue[];
  status?: { code?: string };
}
interface Decoded {
  resourceSpans?: Array<{ resource?: { attributes?: KeyValue[] }; scopeSpans?: Array<{ spans?: DecodedSpan[] }> }>;
}

const hex = (b: Uint8Array | undefined): string => (b === undefined ? '' : Buffer.from(b).toString('hex'));
const value = (v: AnyValue | undefined): AttrValue => v?.stringValue ?? v?.boolValue ?? (v?.intValue !== undefined ? Number(v.intValue) : (v?.doubleValue ?? ''));
const attrs = (list: KeyValue[] | undefined): Record<string, AttrValue> => Object.fromEntries((list ?? []).map((kv) => [kv.key, value(kv.value)]));

function loadRequestType(): protobuf.Type {
  const root = new protobuf.Root();
  // Imports name files from the proto root (opentelemetry/proto/...).
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTOS, target));
  root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
  return root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
}

/** `answer`: the status the receiver answers with (default 200). */
export async function startOtlpReceiver(opts: { answer?: number } = {}): Promise<OtlpReceiver> {
  const type = loadRequestType();
  const spans: ReceivedSpan[] = [];
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push(String(req.headers['content-type']));
      if (req.url !== '/v1/traces' || req.method !== 'POST') {
        res.writeHead(404).end();
        return;
      }
      const msg = type.toObject(type.decode(Buffer.concat(chunks)), { enums: String, longs: String, defaults: false }) as Decoded;
      for (const rs of msg.resourceSpans ?? []) {
        const service = String(attrs(rs.resource?.attributes)['service.name'] ?? '');
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            spans.push({
              traceId: hex(s.traceId),
              spanId: hex(s.spanId),
              parentSpanId: hex(s.parentSpanId),
              name: s.name,
              kind: s.kind ?? 'SPAN_KIND_UNSPECIFIED',
              status: s.status?.code ?? 'STATUS_CODE_UNSET',
              startNs: BigInt(s.startTimeUnixNano),
              endNs: BigInt(s.endTimeUnixNano),
              attributes: attrs(s.attributes),
              service,
            });
          }
        }
      }
      res.writeHead(opts.answer ?? 200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
