// The transcode filter's config schema: which .proto files and services a route exposes to JSON clients, and how.
import { z } from 'zod';
import { size } from '../../config/primitives.js';
import { defineSpec } from '../filter.js';

const transcodeConfig = z.strictObject({
  proto: z.array(z.string().min(1)).default([]).meta({ description: '.proto source files (relative to the working directory); their imports resolve beside each file, then in `include`, then the bundled google/api, google/rpc and google/protobuf files.' }),
  descriptor_set: z.string().min(1).optional().meta({ description: 'A compiled FileDescriptorSet (protoc --include_imports --descriptor_set_out, buf build -o) instead of `proto`, read with protobufjs/ext/descriptor. Its methods answer POST /pkg.Service/Method; google.api.http rules are read from .proto sources only.' }),
  include: z.array(z.string().min(1)).default([]).meta({ description: 'Extra folders imports are looked up in, in order.' }),
  services: z.array(z.string().regex(/^\.?[A-Za-z_][A-Za-z0-9_.]*$/, 'a fully qualified service name such as pkg.v1.Things')).default([]).meta({ description: 'Fully qualified services to expose (default: every service defined in `proto`).' }),
  pass_through_unmatched: z.boolean().default(false).meta({ description: 'A request no binding matches goes on to the route as it is (default: 404 with a JSON error).' }),
  ignore_unknown_fields: z.boolean().default(false).meta({ description: 'Drop JSON fields and query parameters the request message does not have (default: 400 naming the field).' }),
  emit_defaults: z.boolean().default(false).meta({ description: 'Print fields at their default value (0, "", false, empty lists) in responses.' }),
  proto_field_names: z.boolean().default(false).meta({ description: 'Print proto field names (snake_case) instead of JSON names (lowerCamelCase or json_name).' }),
  max_request_body: size.default(4 * 1024 * 1024).meta({ description: 'Largest JSON request body (it is parsed whole, so it is buffered): 413 beyond.' }),
  max_response_message: size.default(4 * 1024 * 1024).meta({ description: 'Largest single gRPC response message converted to JSON.' }),
}).refine((c) => (c.proto.length > 0) !== (c.descriptor_set !== undefined), { message: 'transcode needs proto files or a descriptor_set (one of them)', path: ['proto'] });
export type TranscodeConfig = z.output<typeof transcodeConfig>;

export const transcodeSpec = defineSpec({
  type: 'transcode',
  description: 'gRPC-JSON transcoding: JSON/REST requests to a gRPC service (google.api.http rules from .proto sources), responses back to JSON.',
  schema: transcodeConfig,
  defaults: { proto: ['test/fixtures/transcode/things.proto'] },
});
