// A route's hop payload layers, in order: [receiving compression, receiving protobuf, sending protobuf, sending
// compression]. A request from a sidecar is decompressed, then decoded; toward a sidecar it is encoded, then compressed
// (answers the other way round). Sending layers only on routes whose clusters are all `peer: sidecar`.
import type { Layer } from '../core/service.js';
import type { SidecarMetrics } from '../observability/catalogue.js';
import type { HopAlgorithm, HopCompressionConfig, ProtobufBodiesConfig } from './schema.js';
import { compileBodySchema } from './protobuf-schema.js';
import { receivingLayer, sendingLayer, type PbOutcome, type PbStats } from './protobuf-bodies.js';
import { receivingCompression, sendingCompression, type CompressionStats } from './compression.js';

export interface PayloadRoute {
  readonly listener: string;
  readonly route: string;
  readonly protobufBodies: ProtobufBodiesConfig | undefined;
  readonly compression: HopCompressionConfig | undefined;
  /** Every cluster of the route is `peer: sidecar`. */
  readonly towardSidecar: boolean;
}

export function payloadLayers(r: PayloadRoute, metrics: SidecarMetrics): Layer[] {
  const labels = { listener: r.listener, route: r.route };
  const out: Layer[] = [];
  const cstats: CompressionStats = {
    bytes: (algorithm: HopAlgorithm, direction, stage) => metrics.hopCompressionBytes.get({ ...labels, algorithm, direction, stage }),
  };
  let pbIn: Layer | undefined;
  let pbOut: Layer | undefined;
  if (r.protobufBodies) {
    const schema = compileBodySchema(r.protobufBodies);
    const stats: PbStats = {
      outcome: (side, body, outcome: PbOutcome) => metrics.hopProtobufBodies.get({ ...labels, side, body, outcome }),
      mismatches: metrics.hopSchemaMismatches.get(labels),
      jsonBytes: metrics.hopBodyBytes.get({ ...labels, encoding: 'json' }),
      protobufBytes: metrics.hopBodyBytes.get({ ...labels, encoding: 'protobuf' }),
    };
    pbIn = receivingLayer(schema, stats);
    if (r.towardSidecar) pbOut = sendingLayer(schema, stats);
  }
  if (r.compression) out.push(receivingCompression(r.compression, cstats));
  if (pbIn) out.push(pbIn);
  if (pbOut) out.push(pbOut);
  if (r.compression && r.towardSidecar) out.push(sendingCompression(r.compression, cstats));
  return out;
}
