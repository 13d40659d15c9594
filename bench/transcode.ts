// `npm run bench`, transcoding rows: the same unary call to the bench's grpc-js echo made three ways, interleaved
// rounds, medians: natively and directly, natively through one sidecar, and as JSON (POST /v1/echo) through a
// sidecar whose route transcodes it (bench/protos/echo.proto). Concurrency is the same for both clients (gRPC: calls
// in flight on one channel; JSON: wrk keep-alive connections). BENCH_TRANSCODE=0 skips it.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOAD_CPU, PROXY_CPU, have, pin, sleep, startPinned, waitForPort } from './lib.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROUNDS = Number(process.env.BENCH_TRANSCODE_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const CONCURRENCY = Number(process.env.BENCH_TRANSCODE_CONCURRENCY ?? 32);
const PORTS = { grpc: 18590, admin: 18591, sidecar: 18592 };
const TEXT = '0123456789abcdef0123456789abcdef';
/** bench.Message { text: TEXT } on the wire: field 1, length-delimited, 32 bytes. */
const MESSAGE_HEX = Buffer.concat([Buffer.from([0x0a, TEXT.length]), Buffer.from(TEXT)]).toString('hex');
const JSON_BODY = JSON.stringify({ text: TEXT });

interface Load {
  rps: number;
  p50: number;
  p99: number;
}

if (process.env.BENCH_TRANSCODE === '0') {
  process.stdout.write('\ntranscoding rows skipped (BENCH_TRANSCODE=0)\n');
  process.exit(0);
}
if (!have('wrk')) {
  process.stderr.write('bench needs wrk: install it with `sudo apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk`.\n');
  process.exit(1);
}

const toMs = (v: string, unit: string): number => Number(v) * ({ us: 0.001, ms: 1, s: 1000 }[unit] ?? 1);

function grpcLoad(port: number): Load {
  const [cmd, args] = pin(LOAD_CPU, process.execPath, [path.join(root, 'dist/bench/grpc-load.js'), `127.0.0.1:${port}`, String(CONCURRENCY), String(SECONDS), MESSAGE_HEX]);
  const r = JSON.parse(execFileSync(cmd, args, { encoding: 'utf8' })) as Load & { errors: number; firstError: string };
  if (r.errors > 0) throw new Error(`grpc-load on ${port}: ${r.errors} failed calls, first: ${r.firstError}`);
  return r;
}

function jsonLoad(port: number, script: string): Load {
  const [cmd, args] = pin(LOAD_CPU, 'wrk', ['-t1', `-c${CONCURRENCY}`, `-d${SECONDS}s`, '--latency', '-s', script, `http://127.0.0.1:${port}/v1/echo`]);
  const out = execFileSync(cmd, args, { encoding: 'utf8' });
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`wrk on ${port}: some answers were errors:\n${out}`);
  const q = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]), p50: q('50'), p99: q('99') };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-bench-transcode-'));
  const config = path.join(dir, 'sidecar.yaml');
  writeFileSync(
    config,
    `admin: { port: ${PORTS.admin} }
access_log: { enabled: true, path: ${path.join(dir, 'access.log')} }
drain_delay: 0s
listeners:
  - name: inbound
    port: ${PORTS.sidecar}
    routes:
      - name: json
        match: { prefix: /v1/ }
        cluster: grpc
        filters: [{ type: transcode, config: { proto: [${path.join(root, 'bench/protos/echo.proto')}], services: [bench.Echo] } }]
      - { name: native, match: { prefix: /bench.Echo/ }, cluster: grpc }
clusters:
  - { name: grpc, protocol: h2c, endpoints: ["127.0.0.1:${PORTS.grpc}"] }
`,
  );
  const script = path.join(dir, 'post.lua');
  writeFileSync(script, `wrk.method = "POST"\nwrk.body = '${JSON_BODY}'\nwrk.headers["Content-Type"] = "application/json"\n`);
  startPinned(LOAD_CPU, [path.join(root, 'dist/bench/grpc-upstream.js'), String(PORTS.grpc)]);
  startPinned(PROXY_CPU, [path.join(root, 'bin/sidecar.js'), 'run', '-c', config]);
  await Promise.all([PORTS.grpc, PORTS.sidecar].map((p) => waitForPort(p)));
  await sleep(2000);
  const check = execFileSync('curl', ['-s', '-X', 'POST', '-H', 'content-type: application/json', '-d', JSON_BODY, `http://127.0.0.1:${PORTS.sidecar}/v1/echo`], { encoding: 'utf8' });
  if (JSON.parse(check).text !== TEXT) throw new Error(`transcoded echo answered ${check}`);
  jsonLoad(PORTS.sidecar, script); // warm-up: JIT, the transcoder's first use
  const rows = { direct: [] as Load[], sidecar: [] as Load[], transcoded: [] as Load[] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = (r % 2 ? ['transcoded', 'sidecar', 'direct'] : ['direct', 'sidecar', 'transcoded']) as Array<keyof typeof rows>;
    for (const key of order) rows[key].push(key === 'direct' ? grpcLoad(PORTS.grpc) : key === 'sidecar' ? grpcLoad(PORTS.sidecar) : jsonLoad(PORTS.sidecar, script));
  }
  const m = (k: keyof typeof rows, f: keyof Load): number => median(rows[k].map((x) => x[f]));
  const row = (label: string, k: keyof typeof rows, vs?: keyof typeof rows): string =>
    `  ${label.padEnd(34)} ${m(k, 'rps').toFixed(0).padStart(7)} ${m(k, 'p50').toFixed(2).padStart(8)} ${m(k, 'p99').toFixed(2).padStart(8)}` +
    (vs ? `   ${((m(k, 'rps') / m(vs, 'rps')) * 100).toFixed(1)}% of ${vs} calls/s, p50 ${m(k, 'p50') - m(vs, 'p50') >= 0 ? '+' : ''}${(m(k, 'p50') - m(vs, 'p50')).toFixed(2)}ms` : '');
  const lines = [
    '',
    `Transcoding: one unary echo call (${TEXT.length}-byte string field), ${CONCURRENCY} in flight, proxy on CPU ${PROXY_CPU}, load + upstream on CPU ${LOAD_CPU}; medians of ${ROUNDS} interleaved rounds of ${SECONDS}s`,
    'target                               calls/s   p50 ms   p99 ms',
    row('gRPC, direct', 'direct'),
    row('gRPC through the sidecar', 'sidecar', 'direct'),
    row('JSON through the sidecar (transcode)', 'transcoded', 'sidecar'),
    '',
  ];
  process.stdout.write(lines.join('\n'));
  appendFileSync(path.join(root, '.bench-last.txt'), lines.join('\n'));
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench (transcoding rows) failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
