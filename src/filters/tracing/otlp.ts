// SpanRecords to OTLP/HTTP protobuf bytes with OpenTelemetry's own serializer (@opentelemetry/otlp-transformer),
// loaded on the first export so a process without tracing never loads any @opentelemetry package.
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { SpanRecord } from './span.js';

export type Encoder = (spans: readonly SpanRecord[]) => Uint8Array;

const hr = (ms: number): [number, number] => {
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
};

export async function loadOtlpEncoder(serviceName: string, version: string): Promise<Encoder> {
  const [{ ProtobufTraceSerializer }, { resourceFromAttributes }, { TraceState }] = await Promise.all([
    import('@opentelemetry/otlp-transformer'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
  ]);
  const resource = resourceFromAttributes({ 'service.name': serviceName, 'service.version': version, 'telemetry.sdk.name': 'sidecar', 'telemetry.sdk.language': 'nodejs' });
  const scope = { name: 'sidecar', version };
  const states = new Map<string, InstanceType<typeof TraceState>>();
  const traceState = (s: string | undefined): InstanceType<typeof TraceState> | undefined => {
    if (s === undefined || s === '') return undefined;
    let t = states.get(s);
    if (t === undefined) {
      t = new TraceState(s);
      if (states.size < 256) states.set(s, t);
    }
    return t;
  };
  const toReadable = (r: SpanRecord): ReadableSpan => {
    // The sidecar exports only what it kept, so every exported span is sampled.
    const context = { traceId: r.traceId, spanId: r.spanId, traceFlags: 1, traceState: traceState(r.traceState) };
    return {
      name: r.name,
      kind: r.kind,
      spanContext: () => context,
      parentSpanContext: r.parentSpanId === undefined ? undefined : { traceId: r.traceId, spanId: r.parentSpanId, traceFlags: 1, isRemote: r.parentRemote },
      startTime: hr(r.start),
      endTime: hr(r.end),
      duration: hr(r.end - r.start),
      status: r.error ? { code: 2, message: r.message } : { code: 0 },
      attributes: r.attributes,
      links: [],
      events: [],
      ended: true,
      resource,
      instrumentationScope: scope,
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
  };
  return (spans) => {
    const bytes = ProtobufTraceSerializer.serializeRequest(spans.map(toReadable));
    if (bytes === undefined) throw new Error('the OTLP serializer produced nothing');
    return bytes;
  };
}
