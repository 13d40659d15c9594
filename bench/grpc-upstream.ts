// Benchmark gRPC upstream: a grpc-js server with one generic unary method (/bench.Echo/Unary) that echoes its bytes.
// Usage: grpc-upstream PORT
import * as grpc from '@grpc/grpc-js';

export const UNARY_PATH = '/bench.Echo/Unary';
const raw = (b: Buffer): Buffer => b;

/** The method definition both the server and the load driver use: raw bytes, no protobuf code. */
export const UNARY: grpc.MethodDefinition<Buffer, Buffer> = {
  path: UNARY_PATH,
  requestStream: false,
  responseStream: false,
  requestSerialize: raw,
  requestDeserialize: raw,
  responseSerialize: raw,
  responseDeserialize: raw,
};

export function startGrpcEcho(port: number): Promise<grpc.Server> {
  const server = new grpc.Server();
  server.addService({ Unary: UNARY }, { Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, call.request) });
  return new Promise((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve(server))),
  );
}

if (process.argv[1]?.endsWith('grpc-upstream.js')) {
  const port = Number(process.argv[2] ?? 18490);
  void startGrpcEcho(port).then(() => process.stdout.write(`ready ${port}\n`));
}
