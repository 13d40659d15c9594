// gRPC unary load driver (ghz is not packaged): one grpc-js channel, CONCURRENCY calls kept in flight for SECONDS.
// Usage: grpc-load HOST:PORT CONCURRENCY SECONDS [PAYLOAD_HEX]. Prints JSON: calls, errors, calls/s, p50 and p99 in ms.
import * as grpc from '@grpc/grpc-js';
import { UNARY } from './grpc-upstream.js';

const [, , target = '127.0.0.1:18490', concurrencyArg = '32', secondsArg = '4', payloadHex] = process.argv;
const concurrency = Number(concurrencyArg);
const seconds = Number(secondsArg);
// 32 bytes, a typical small request; bench/transcode.ts passes a real protobuf message instead.
const PAYLOAD = payloadHex ? Buffer.from(payloadHex, 'hex') : Buffer.from('0123456789abcdef0123456789abcdef');

const client = new grpc.Client(target, grpc.credentials.createInsecure());
const call = (): Promise<void> =>
  new Promise((resolve, reject) => client.makeUnaryRequest(UNARY.path, UNARY.requestSerialize, UNARY.responseDeserialize, PAYLOAD, (err) => (err ? reject(err) : resolve())));

async function main(): Promise<void> {
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
  for (let i = 0; i < 200; i++) await call(); // warm-up: JIT on both ends, the sidecar's upstream session
  const latencies: number[] = [];
  let errors = 0;
  let firstError = '';
  const start = performance.now();
  const end = start + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await call();
        latencies.push(performance.now() - t0);
      } catch (err) {
        errors++;
        firstError ||= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - start) / 1000;
  client.close();
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  process.stdout.write(`${JSON.stringify({ calls: latencies.length, errors, firstError, rps: latencies.length / elapsed, p50: q(0.5), p99: q(0.99) })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`grpc-load: ${(err as Error).message}\n`);
  process.exit(1);
});
