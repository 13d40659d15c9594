// The span model on the hot path: plain objects with string ids and epoch-ms times; they become OpenTelemetry
// ReadableSpans only at export time (otlp.ts), off the request path.

/** The values of @opentelemetry/api's SpanKind. */
export const SPAN_KIND_SERVER = 1;
export const SPAN_KIND_CLIENT = 2;

export type AttributeValue = string | number | boolean;

export interface SpanRecord {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | undefined;
  /** The parent is the caller's span (read off the request), not one of this sidecar's. */
  readonly parentRemote: boolean;
  /** The inbound tracestate, passed on unchanged. */
  readonly traceState: string | undefined;
  readonly kind: typeof SPAN_KIND_SERVER | typeof SPAN_KIND_CLIENT;
  name: string;
  /** Epoch milliseconds (fractional). */
  readonly start: number;
  end: number;
  readonly attributes: Record<string, AttributeValue>;
  /** Status ERROR (5xx or a failure); otherwise UNSET. */
  error: boolean;
  message: string | undefined;
}

/** Epoch ms of a performance.now() reading: span times are wall-clock, request times are monotonic. */
export const epochMs = (perfNow: number): number => performance.timeOrigin + perfNow;
