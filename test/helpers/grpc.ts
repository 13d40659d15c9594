// Test helper: a grpc-js server and client for one generic service (raw Buffer messages, no .proto), on 127.0.0.1.
import grpc from '@grpc/grpc-js';

export const SERVICE = 'test.Echo';

const identity = (b: Buffer): Buffer => b;

const method = (name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> => ({
  path: `/${SERVICE}/${name}`,
  requestStream,
  responseStream,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
  originalName: name,
});

/** The four streaming kinds, one method each. */
export const ECHO: grpc.ServiceDefinition = {
  Unary: method('Unary', false, false),
  ServerStream: method('ServerStream', false, true),
  ClientStream: method('ClientStream', true, false),
  Bidi: method('Bidi', true, true),
};

export interface EchoHandlers {
  Unary?: grpc.handleUnaryCall<Buffer, Buffer>;
  ServerStream?: grpc.handleServerStreamingCall<Buffer, Buffer>;
  ClientStream?: grpc.handleClientStreamingCall<Buffer, Buffer>;
  Bidi?: grpc.handleBidiStreamingCall<Buffer, Buffer>;
}

const unimplemented = (_call: unknown, cb?: unknown): void => {
  const err = { code: grpc.status.UNIMPLEMENTED, details: 'not in this test' };
  if (typeof cb === 'function') (cb as (e: unknown) => void)(err);
};

export interface RunningGrpcServer {
  readonly server: grpc.Server;
  readonly address: string;
  close(): Promise<void>;
}

export async function startGrpcServer(handlers: EchoHandlers): Promise<RunningGrpcServer> {
  const server = new grpc.Server();
  const impl: grpc.UntypedServiceImplementation = {
    Unary: handlers.Unary ?? unimplemented,
    ServerStream: handlers.ServerStream ?? ((call: grpc.ServerWritableStream<Buffer, Buffer>) => call.destroy(new Error('not in this test'))),
    ClientStream: handlers.ClientStream ?? unimplemented,
    Bidi: handlers.Bidi ?? ((call: grpc.ServerDuplexStream<Buffer, Buffer>) => call.end()),
  };
  server.addService(ECHO, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    server,
    address: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

export type EchoClient = grpc.Client & {
  Unary(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: grpc.requestCallback<Buffer>): grpc.ClientUnaryCall;
  ServerStream(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientReadableStream<Buffer>;
  ClientStream(md: grpc.Metadata, opts: grpc.CallOptions, cb: grpc.requestCallback<Buffer>): grpc.ClientWritableStream<Buffer>;
  Bidi(md: grpc.Metadata, opts: grpc.CallOptions): grpc.ClientDuplexStream<Buffer, Buffer>;
};

const EchoConstructor = grpc.makeGenericClientConstructor(ECHO, SERVICE);

/** A client on a plain-text channel to port (a sidecar listener or the server itself). */
export function echoClient(port: number): EchoClient {
  return new EchoConstructor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as EchoClient;
}

export interface UnaryResult {
  readonly error: grpc.ServiceError | null;
  readonly value: Buffer | undefined;
  readonly headers: grpc.Metadata | undefined;
  readonly status: grpc.StatusObject | undefined;
}

/** A unary call that resolves with everything the client saw: error or value, initial metadata, final status. */
export function unary(client: EchoClient, req: Buffer, md = new grpc.Metadata(), opts: grpc.CallOptions = {}): Promise<UnaryResult> {
  return new Promise((resolve) => {
    let headers: grpc.Metadata | undefined;
    let status: grpc.StatusObject | undefined;
    let result: { error: grpc.ServiceError | null; value: Buffer | undefined } | undefined;
    const done = (): void => {
      if (result !== undefined && status !== undefined) resolve({ ...result, headers, status });
    };
    const call = client.Unary(req, md, { deadline: Date.now() + 10_000, ...opts }, (error, value) => {
      result = { error, value };
      done();
    });
    call.on('metadata', (m: grpc.Metadata) => (headers = m));
    call.on('status', (s: grpc.StatusObject) => {
      status = s;
      done();
    });
  });
}

export { grpc };
