// The tracing filter's config schema (defaults live here only).
import { z } from 'zod';
import { duration, headerName } from '../../config/primitives.js';
import { defineSpec } from '../filter.js';

const tracingConfig = z
  .strictObject({
    service_name: z.string().min(1).default('sidecar').meta({ description: 'service.name of the exported resource.' }),
    sampling_ratio: z
      .number()
      .min(0)
      .max(1)
      .default(1)
      .meta({ description: 'Share of new traces sampled (by trace id); a request with a parent follows its sampled flag (parent-based).' }),
    always_sample: z
      .strictObject({
        errors: z.boolean().default(false).meta({ description: "Keep an unsampled request's spans when it failed (5xx or a sidecar failure)." }),
        slower_than: duration.default(0).meta({ description: "Keep an unsampled request's spans when it took longer than this (0: off)." }),
      })
      .default({ errors: false, slower_than: 0 })
      .meta({ description: "Tail keep decision for the sidecar's own spans: an unsampled request's spans are held until it ends and kept when it failed or was slow." }),
    propagation: z
      .array(z.enum(['w3c', 'b3', 'b3multi']))
      .min(1)
      .default(['w3c'])
      .meta({ description: 'Formats written to upstreams: W3C traceparent/tracestate always, plus B3 single (b3) and multi-header (b3multi) when listed. Inbound, all three are read.' }),
    otlp: z
      .strictObject({
        endpoint: z
          .string()
          .regex(/^https?:\/\/[^/]+(\/.*)?$/, 'an http:// or https:// URL, e.g. http://127.0.0.1:4318/v1/traces')
          .default('http://127.0.0.1:4318/v1/traces')
          .meta({ description: "The collector's OTLP/HTTP traces URL (protobuf); https:// is verified against the system's trust store." }),
        timeout: duration.default(5000).meta({ description: 'Most time one export POST may take; past it the batch is dropped (counted).' }),
        headers: z
          .record(headerName, z.string())
          .default({})
          .meta({ description: 'Extra request headers for the collector (e.g. an authorization token).' }),
      })
      .default({ endpoint: 'http://127.0.0.1:4318/v1/traces', timeout: 5000, headers: {} }),
    max_queue: z.number().int().min(1).max(1_000_000).default(2048).meta({ description: 'Most finished spans waiting for export; past it new spans are dropped (counted).' }),
    max_batch: z.number().int().min(1).max(100_000).default(512).meta({ description: 'Most spans in one export request.' }),
    flush_interval: duration.default(1000).meta({ description: 'Longest a finished span waits before its batch is sent.' }),
  })
  .refine((c) => c.max_batch <= c.max_queue, { message: 'max_batch must not be over max_queue', path: ['max_batch'] })
  .refine((c) => c.flush_interval > 0, { message: 'flush_interval must be over 0', path: ['flush_interval'] });

export type TracingConfig = z.output<typeof tracingConfig>;

export const tracingSpec = defineSpec({
  type: 'tracing',
  description:
    'OpenTelemetry tracing: W3C (and B3) propagation, a server span per request and a client span per upstream attempt, parent-based ratio sampling with a tail keep for failed or slow requests, OTLP/HTTP protobuf export in bounded batches.',
  schema: tracingConfig,
  defaults: { otlp: { endpoint: 'http://127.0.0.1:9/v1/traces' } },
});
