// `npm run bench`, mesh rows: HTTP/1.1 clients through two sidecars with the hop over h2c and h2 + mTLS next to the
// same hop over HTTP/1.1 (same processes, interleaved rounds), the latency each hop adds at a fixed rate, and gRPC
// unary through one sidecar next to direct. BENCH_MESH=0 skips it. Certificates come from the CLI.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOAD_CPU, PROXY_CPU, have, pin, sleep, waitForPort, children, startPinned } from './lib.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROUNDS = Number(process.env.BENCH_MESH_ROUNDS ?? process.env.BENCH_ROUNDS ?? 3);
const DURATION = Number(process.env.BENCH_SECONDS ?? 4);
const FIXED_SECONDS = Number(process.env.BENCH_MESH_FIXED_SECONDS ?? 2);
/** Short interleaved fixed-rate runs, medians taken: one burst of load from elsewhere then spoils one run, not a row. */
const FIXED_ROUNDS = Number(process.env.BENCH_MESH_FIXED_ROUNDS ?? 3);
/** The issue's figure: 64 concurrent HTTP/1.1 clients (one keep-alive connection each). */
const CLIENTS = Number(process.env.BENCH_MESH_CLIENTS ?? 64);
/** Below what two sidecars on one CPU carry, so the percentiles are latency, not queueing. */
const FIXED_RATE = Number(process.env.BENCH_MESH_RATE ?? 500);
const GRPC_CONCURRENCY = Number(process.env.BENCH_GRPC_CONCURRENCY ?? 32);
const GRPC_ROUNDS = Number(process.env.BENCH_GRPC_ROUNDS ?? 2);
const PORTS = {
  upstream: 18480,
  grpc: 18490,
  bAdmin: 18401,
  bDirect: 18402,
  bH1: 18403,
  bH2c: 18404,
  bMtlsH1: 18405,
  bMtlsH2: 18406,
  aAdmin: 18411,
  aH1: 18412,
  aH2c: 18413,
  aMtlsH1: 18414,
  aMtlsH2: 18415,
};

if (process.env.BENCH_MESH === '0') {
  process.stdout.write('\nmesh rows skipped (BENCH_MESH=0)\n');
  process.exit(0);
}
if (!have('wrk')) {
  process.stderr.write('bench needs wrk: install it with `sudo apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk`.\n');
  process.exit(1);
}


interface Load {
  rps: number;
  p99: number;
}

const toMs = (v: string, unit: string): number => Number(v) * ({ us: 0.001, ms: 1, s: 1000 }[unit] ?? 1);

/** Closed loop: CLIENTS keep-alive HTTP/1.1 connections, each sending its next request when the last is answered. */
function wrk(port: number, seconds = DURATION): Load {
  const [cmd, args] = pin(LOAD_CPU, 'wrk', ['-t1', `-c${CLIENTS}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`]);
  const out = execFileSync(cmd, args, { encoding: 'utf8' });
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`wrk on ${port}: some answers were errors:\n${out}`);
  const m = /^\s+99%\s+([\d.]+)(us|ms|s)/m.exec(out);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]), p99: m ? toMs(m[1]!, m[2]!) : NaN };
}

/** Open loop: FIXED_RATE requests per second whatever the answers do (bench/fixed-rate.ts), latency of each. */
function fixedRate(port: number, seconds = FIXED_SECONDS): { p50: number; p99: number } {
  const [cmd, args] = pin(LOAD_CPU, process.execPath, [path.join(root, 'dist/bench/fixed-rate.js'), `127.0.0.1:${port}`, String(FIXED_RATE), String(seconds), '32', 'h1']);
  const r = JSON.parse(execFileSync(cmd, args, { encoding: 'utf8' })) as { p50: number; p99: number; received: number; sent: number; errors: number };
  if (r.received < r.sent || r.errors > 0) throw new Error(`fixed-rate on ${port}: ${r.received}/${r.sent} answered, ${r.errors} errors`);
  return r;
}

function grpcLoad(port: number, seconds = DURATION): { rps: number; p50: number; p99: number } {
  const [cmd, args] = pin(LOAD_CPU, process.execPath, [path.join(root, 'dist/bench/grpc-load.js'), `127.0.0.1:${port}`, String(GRPC_CONCURRENCY), String(seconds)]);
  const r = JSON.parse(execFileSync(cmd, args, { encoding: 'utf8' })) as { rps: number; p50: number; p99: number; errors: number; firstError: string };
  if (r.errors > 0) throw new Error(`grpc-load on ${port}: ${r.errors} failed calls, first: ${r.firstError}`);
  return r;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Connections a sidecar's listener has accepted so far (sidecar_downstream_connections_total). */
async function accepted(adminPort: number, listener: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`, { headers: { connection: 'close' } })).text();
  const series = `sidecar_downstream_connections_total{listener="${listener}"} `;
  const line = text.split('\n').find((l) => l.startsWith(series));
  return line ? Number(line.slice(series.length)) : 0;
}

function configs(dir: string): { a: string; b: string } {
  const certs = (...args: string[]): void => void execFileSync(process.execPath, [path.join(root, 'bin/sidecar.js'), 'certs', ...args], { stdio: 'ignore' });
  const ca = path.join(dir, 'ca');
  certs('init-ca', '--trust-domain', 'bench.local', '--out', ca);
  certs('issue', '--ca', ca, '--identity', 'spiffe://bench.local/ns/bench/sa/server', '--out', path.join(dir, 'server'), '--ttl', '720h');
  certs('issue', '--ca', ca, '--identity', 'spiffe://bench.local/ns/bench/sa/client', '--out', path.join(dir, 'client'), '--ttl', '720h');
  const f = (who: string, file: string): string => path.join(dir, who, file);
  const write = (name: string, text: string): string => {
    const file = path.join(dir, `${name}.yaml`);
    writeFileSync(file, `${text}drain_delay: 0s\n`);
    return file;
  };
  const app = '{ name: app, match: { prefix: / }, cluster: app }';
  const serverTls = `{ cert: ${f('server', 'cert.pem')}, key: ${f('server', 'key.pem')}, client_ca: ${f('server', 'ca.pem')}, require_client_cert: true }`;
  const b = write(
    'b',
    `admin: { port: ${PORTS.bAdmin} }
access_log: { enabled: true, path: ${path.join(dir, 'b-access.log')} }
listeners:
  - { name: direct, port: ${PORTS.bDirect}, routes: [{ name: grpc, match: { prefix: /bench.Echo/ }, cluster: grpc }, ${app}] }
  - { name: h1, port: ${PORTS.bH1}, routes: [${app}] }
  - { name: h2c, port: ${PORTS.bH2c}, routes: [${app}] }
  - { name: mtls-h1, port: ${PORTS.bMtlsH1}, tls: ${serverTls}, routes: [${app}] }
  - { name: mtls-h2, port: ${PORTS.bMtlsH2}, tls: ${serverTls}, routes: [${app}] }
clusters:
  - { name: app, endpoints: ["127.0.0.1:${PORTS.upstream}"] }
  - { name: grpc, protocol: h2c, endpoints: ["127.0.0.1:${PORTS.grpc}"] }
`,
  );
  const clientTls = `{ ca: ${f('client', 'ca.pem')}, cert: ${f('client', 'cert.pem')}, key: ${f('client', 'key.pem')}, expected_identities: ["spiffe://bench.local/ns/bench/sa/server"] }`;
  const to = (name: string): string => `routes: [{ name: hop, match: { prefix: / }, cluster: ${name} }]`;
  const a = write(
    'a',
    `admin: { port: ${PORTS.aAdmin} }
access_log: { enabled: true, path: ${path.join(dir, 'a-access.log')} }
listeners:
  - { name: h1, port: ${PORTS.aH1}, ${to('b-h1')} }
  - { name: h2c, port: ${PORTS.aH2c}, ${to('b-h2c')} }
  - { name: mtls-h1, port: ${PORTS.aMtlsH1}, ${to('b-mtls-h1')} }
  - { name: mtls-h2, port: ${PORTS.aMtlsH2}, ${to('b-mtls-h2')} }
clusters:
  - { name: b-h1, endpoints: ["127.0.0.1:${PORTS.bH1}"] }
  - { name: b-h2c, protocol: h2c, endpoints: ["127.0.0.1:${PORTS.bH2c}"] }
  - { name: b-mtls-h1, tls: ${clientTls}, endpoints: ["127.0.0.1:${PORTS.bMtlsH1}"] }
  - { name: b-mtls-h2, protocol: h2, tls: ${clientTls}, endpoints: ["127.0.0.1:${PORTS.bMtlsH2}"] }
`,
  );
  return { a, b };
}

const pct = (x: number, of: number): string => `${((x / of) * 100).toFixed(1)}%`;
const signed = (ms: number): string => `${ms >= 0 ? '+' : ''}${ms.toFixed(3)}ms`;

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-bench-mesh-'));
  const files = configs(dir);
  startPinned(LOAD_CPU, [path.join(root, 'dist/bench/upstream.js'), String(PORTS.upstream)]);
  startPinned(LOAD_CPU, [path.join(root, 'dist/bench/grpc-upstream.js'), String(PORTS.grpc)]);
  for (const file of [files.b, files.a]) startPinned(PROXY_CPU, [path.join(root, 'bin/sidecar.js'), 'run', '-c', file]);
  await Promise.all([PORTS.upstream, PORTS.grpc, PORTS.bMtlsH2, PORTS.aMtlsH2].map((p) => waitForPort(p)));
  await sleep(2000); // start-up garbage (config worker, JIT) settles
  process.stdout.write(
    `\nmesh rows: both sidecars on CPU ${PROXY_CPU}, load + upstreams on CPU ${LOAD_CPU}; ${ROUNDS} interleaved rounds of` +
      ` wrk -c${CLIENTS} -d${DURATION}s per hop, ${FIXED_ROUNDS} x ${FIXED_SECONDS}s at ${FIXED_RATE} req/s per target, ${GRPC_ROUNDS} rounds of gRPC unary x${GRPC_CONCURRENCY}\n`,
  );

  // 1. Throughput and p99 of 64 HTTP/1.1 clients through A → B, the hop over each protocol.
  const hops = [
    { name: 'h1', label: 'hop over HTTP/1.1', port: PORTS.aH1 },
    { name: 'h2c', label: 'hop over h2c', port: PORTS.aH2c },
    { name: 'mtls-h1', label: 'hop over HTTP/1.1 + mTLS', port: PORTS.aMtlsH1 },
    { name: 'mtls-h2', label: 'hop over h2 + mTLS', port: PORTS.aMtlsH2 },
  ] as const;
  type Hop = (typeof hops)[number]['name'];
  const loads = Object.fromEntries(hops.map((h) => [h.name, [] as Load[]])) as Record<Hop, Load[]>;
  const connsBefore = Object.fromEntries(await Promise.all(hops.map(async (h) => [h.name, await accepted(PORTS.bAdmin, h.name)] as const))) as Record<Hop, number>;
  for (const h of hops) wrk(h.port, 2); // warm-up: JIT, pools, handshakes
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < hops.length; i++) {
      const h = hops[(i + r) % hops.length]!; // rotate so no hop always runs first
      const res = wrk(h.port);
      loads[h.name].push(res);
      process.stdout.write(`  ${h.label.padEnd(26)} round ${r + 1} ${res.rps.toFixed(0).padStart(7)} req/s  p99 ${res.p99.toFixed(2)}ms\n`);
    }
  }
  const hopConns = Object.fromEntries(await Promise.all(hops.map(async (h) => [h.name, (await accepted(PORTS.bAdmin, h.name)) - connsBefore[h.name]] as const))) as Record<Hop, number>;
  const rps = (h: Hop): number => median(loads[h].map((l) => l.rps));
  const p99 = (h: Hop): number => median(loads[h].map((l) => l.p99));

  // 2. Latency added per hop at a fixed rate: direct, through B only, through A and B (each hop protocol).
  const targets = [
    { label: 'direct (client -> upstream)', port: PORTS.upstream },
    { label: 'one sidecar (client -> B)', port: PORTS.bDirect },
    { label: 'two sidecars, hop HTTP/1.1', port: PORTS.aH1 },
    { label: 'two sidecars, hop h2c', port: PORTS.aH2c },
    { label: 'two sidecars, hop h2 + mTLS', port: PORTS.aMtlsH2 },
  ];
  for (const t of targets) fixedRate(t.port, 1); // unmeasured: the fixed-rate connections and their pool entries warm up
  const fixedRuns = targets.map(() => [] as Array<{ p50: number; p99: number }>);
  for (let r = 0; r < FIXED_ROUNDS; r++) {
    for (let i = 0; i < targets.length; i++) {
      const k = (i + r) % targets.length;
      fixedRuns[k]!.push(fixedRate(targets[k]!.port));
    }
  }
  const fixed = fixedRuns.map((runs) => ({ p50: median(runs.map((x) => x.p50)), p99: median(runs.map((x) => x.p99)) }));
  process.stdout.write(`  fixed ${FIXED_RATE} req/s p50/p99: ${targets.map((t, i) => `${t.label} ${fixed[i]!.p50.toFixed(3)}/${fixed[i]!.p99.toFixed(3)}ms`).join(', ')}\n`);

  // 3. gRPC unary: direct to the grpc-js server, and through B (h2c in, h2c out).
  const grpc = { direct: [] as Array<ReturnType<typeof grpcLoad>>, sidecar: [] as Array<ReturnType<typeof grpcLoad>> };
  for (let r = 0; r < GRPC_ROUNDS; r++) {
    for (const key of (r % 2 ? ['sidecar', 'direct'] : ['direct', 'sidecar']) as Array<keyof typeof grpc>) {
      const res = grpcLoad(key === 'direct' ? PORTS.grpc : PORTS.bDirect);
      grpc[key].push(res);
      process.stdout.write(`  gRPC unary ${key.padEnd(8)} round ${r + 1} ${res.rps.toFixed(0).padStart(7)} calls/s  p50 ${res.p50.toFixed(2)}ms  p99 ${res.p99.toFixed(2)}ms\n`);
    }
  }
  const g = (k: keyof typeof grpc, f: 'rps' | 'p50' | 'p99'): number => median(grpc[k].map((x) => x[f]));

  const lines = [
    '',
    `Mesh: ${CLIENTS} HTTP/1.1 clients -> sidecar A -> sidecar B -> upstream (wrk, medians of ${ROUNDS} rounds)`,
    'hop                          req/s   p99 ms   vs HTTP/1.1 hop (req/s, p99)   connections A -> B (all runs)',
    ...hops.map(
      (h) =>
        `  ${h.label.padEnd(26)} ${rps(h.name).toFixed(0).padStart(7)} ${p99(h.name).toFixed(2).padStart(8)}` +
        `   ${h.name === 'h1' || h.name === 'mtls-h1' ? ''.padEnd(28) : `${pct(rps(h.name), rps(h.name === 'h2c' ? 'h1' : 'mtls-h1')).padStart(7)}, ${pct(p99(h.name), p99(h.name === 'h2c' ? 'h1' : 'mtls-h1')).padStart(7)}`.padEnd(28)}` +
        `   ${hopConns[h.name]}`,
    ),
    `  h2 + mTLS vs plaintext HTTP/1.1 hop: ${pct(rps('mtls-h2'), rps('h1'))} req/s, ${pct(p99('mtls-h2'), p99('h1'))} p99`,
    '',
    `Latency added per hop at a fixed ${FIXED_RATE} req/s (open loop, 32 connections; medians of ${FIXED_ROUNDS} interleaved runs of ${FIXED_SECONDS}s)`,
    'target                           p50 ms   p99 ms   added p50, p99 (vs the row it extends)',
    ...targets.map((t, i) => {
      const base = i === 0 ? undefined : fixed[i === 1 ? 0 : 1]!;
      const added = base ? `${signed(fixed[i]!.p50 - base.p50)}, ${signed(fixed[i]!.p99 - base.p99)}` : '';
      return `  ${t.label.padEnd(30)} ${fixed[i]!.p50.toFixed(3).padStart(7)} ${fixed[i]!.p99.toFixed(3).padStart(8)}   ${added}`;
    }),
    '',
    `gRPC unary, ${GRPC_CONCURRENCY} calls in flight on one grpc-js channel (medians of ${GRPC_ROUNDS} rounds of ${DURATION}s)`,
    'target            calls/s   p50 ms   p99 ms',
    `  direct         ${g('direct', 'rps').toFixed(0).padStart(7)} ${g('direct', 'p50').toFixed(2).padStart(8)} ${g('direct', 'p99').toFixed(2).padStart(8)}`,
    `  one sidecar    ${g('sidecar', 'rps').toFixed(0).padStart(7)} ${g('sidecar', 'p50').toFixed(2).padStart(8)} ${g('sidecar', 'p99').toFixed(2).padStart(8)}` +
      `   ${pct(g('sidecar', 'rps'), g('direct', 'rps'))} of direct calls/s, ${signed(g('sidecar', 'p50') - g('direct', 'p50'))} p50, ${signed(g('sidecar', 'p99') - g('direct', 'p99'))} p99`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  appendFileSync(path.join(root, '.bench-last.txt'), lines.join('\n'));
  process.exit(0);
}

main().catch((err: unknown) => {
  const cause = (err as { cause?: unknown }).cause;
  process.stderr.write(`bench (mesh rows) failed: ${(err as Error).stack ?? String(err)}${cause ? `\ncause: ${String(cause)}` : ''}\n`);
  for (const c of children) if (c.exitCode !== null) process.stderr.write(`process ${c.spawnargs.slice(-1)[0]} exited with ${c.exitCode}\n`);
  process.exit(1);
});
