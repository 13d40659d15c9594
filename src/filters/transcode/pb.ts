// protobufjs, loaded on first use: only a config with a transcode filter pays for it (the footprint test keeps it so).
import { createRequire } from 'node:module';
import type * as protobuf from 'protobufjs';

let loaded: typeof protobuf | undefined;

export function pb(): typeof protobuf {
  loaded ??= createRequire(import.meta.url)('protobufjs') as typeof protobuf;
  return loaded;
}
