// Config of what the sidecar hop carries for a route: protobuf bodies (routes[].protobuf_bodies) and compression
// (routes[].hop_compression). Both sides of the hop declare them; see docs/payloads.md.
import { z } from 'zod';
import { size } from '../config/primitives.js';

const typeName = z.string().regex(/^\.?[A-Za-z_][A-Za-z0-9_.]*$/, 'a fully qualified message name such as pkg.v1.Order');

export const protobufBodies = z
  .strictObject({
    proto: z.array(z.string().min(1)).default([]).meta({ description: '.proto source files (relative to the working directory); imports resolve as for the transcode filter.' }),
    descriptor_set: z.string().min(1).optional().meta({ description: 'A compiled FileDescriptorSet (protoc --include_imports --descriptor_set_out, buf build -o) instead of `proto`.' }),
    include: z.array(z.string().min(1)).default([]).meta({ description: 'Extra folders imports are looked up in, in order.' }),
    request: typeName.optional().meta({ description: 'Message type of the JSON request body (absent: request bodies cross as JSON).' }),
    response: typeName.optional().meta({ description: 'Message type of the JSON response body (absent: response bodies cross as JSON).' }),
    max_body: size.default(1024 * 1024).meta({ description: 'Largest body converted (it is converted whole, so it is buffered up to this); a larger one crosses the hop as JSON, untouched.' }),
    emit_defaults: z.boolean().default(false).meta({ description: 'The decoding sidecar prints fields at their default value (set it when the apps send them: a body that would not come back the same crosses as JSON).' }),
  })
  .refine((c) => (c.proto.length > 0) !== (c.descriptor_set !== undefined), { message: 'protobuf_bodies needs proto files or a descriptor_set (one of them)' })
  .refine((c) => c.request !== undefined || c.response !== undefined, { message: 'protobuf_bodies needs a request or a response message type (or both)' });
export type ProtobufBodiesConfig = z.output<typeof protobufBodies>;

export const HOP_ALGORITHMS = ['zstd', 'br', 'gzip'] as const;
export type HopAlgorithm = (typeof HOP_ALGORITHMS)[number];

export const hopCompression = z.strictObject({
  algorithms: z.array(z.enum(HOP_ALGORITHMS)).min(1).default(['zstd', 'br', 'gzip']).meta({ description: 'Encodings this sidecar offers and accepts on the hop, preferred first (zstd only where the runtime has zlib.createZstdCompress).' }),
  min_bytes: size.default(1024).meta({ description: 'Bodies with a declared length below this cross uncompressed (a body of unknown length is compressed).' }),
  content_types: z
    .array(z.string().min(1))
    .default(['application/json', 'application/x-protobuf', 'application/xml', 'application/javascript', 'text/'])
    .meta({ description: 'Compressible content types (prefixes of the content-type value).' }),
  level: z.number().int().min(1).max(11).default(4).meta({ description: 'Compression effort (gzip 1-9, brotli 1-11, zstd 1-11): the hop favours speed.' }),
});
export type HopCompressionConfig = z.output<typeof hopCompression>;
