// `node dist/bench/features.js`: what each edge and observability feature costs, against the same sidecar with it
// off, a direct connection and the bare Node proxy, in one run. Every variant is a fresh sidecar process pinned to
// CPU 0 (load and upstream on CPU 1); rounds are interleaved so drift hits every variant alike; figures are medians,
// and the "by round" columns are medians of one variant's req/s over another's in the same round (their range after).
// BENCH_FEATURE_ROUNDS, BENCH_FEATURE_SECONDS and BENCH_FEATURES (a name filter) tune it.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { LOAD_CPU, PROXY_CPU, have, pin, sleep, startPinned, waitForPort } from './lib.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROUNDS = Number(process.env.BENCH_FEATURE_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_FEATURE_SECONDS ?? 4);
const CONNECTIONS = 50;
const PORTS = { upstream: 18280, sidecar: 18201, admin: 18202, baseline: 18300, collector: 18290 };
if (!have('wrk')) {
  process.stderr.write('bench needs wrk: install it with `sudo apt-get install -y wrk`.\n');
  process.exit(1);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-features-'));
const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
const token = await new SignJWT({ scope: 'orders:read' })
  .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
  .setIssuer('https://issuer.bench')
  .setAudience('bench')
  .setSubject('bench')
  .setExpirationTime('1h')
  .sign(privateKey);

interface Variant {
  name: string;
  /** YAML for the admin block's extra keys, the top level and the listener's filters. */
  admin?: string;
  top?: string;
  filters?: string;
  headers?: string[];
  /** stdout goes to a pipe read (and discarded) by `cat` on the load CPU, not to /dev/null. */
  stdoutPipe?: boolean;
}

const accessLogPath = path.join(dir, 'access.log');
const accessLog = `access_log: { enabled: true, path: ${accessLogPath} }`;
/**
 * Empties the access log (the sidecar appends, so it writes on at offset 0). Why: on a fresh VM, page-cache pages
 * that were never touched cost the host a fault each on first write, about ten times the cost of the write itself
 * (`dd` of 1 GB: 2.5 s of system time into fresh memory, 0.2 s into recycled memory). A log that grows through the
 * whole run would measure that, not the sidecar; a truncated one recycles the pages the warm-up touched, as a
 * long-running host with rotated logs does.
 */
const emptyAccessLog = (): void => {
  if (existsSync(accessLogPath)) truncateSync(accessLogPath, 0);
};
// Tracing as a demanding user runs it: 1% of traces, and the sidecar's spans of any failed or slow request kept.
const tracing = `- type: tracing\n        config: { sampling_ratio: 0.01, always_sample: { errors: true, slower_than: 500ms }, otlp: { endpoint: "http://127.0.0.1:${PORTS.collector}/v1/traces" } }`;
// "Off" is everything that has a switch: the access log, the debug ring, the latency history (dashboard and GET
// /latency) and the per-endpoint series. What stays is the route-level metrics, which have none.
const offAdmin = 'debug_requests: { enabled: false }, latency_history: { enabled: false }, metrics: { max_endpoint_series: 0 }';
const accessOff = 'access_log: { enabled: false }';
const variants: Variant[] = [
  { name: 'observability off', admin: offAdmin, top: accessOff },
  // The default config: the access log goes to stdout, which in a pod is a pipe the container runtime reads.
  { name: 'default (access log to stdout, debug ring, latency history)', stdoutPipe: true },
  { name: 'everything on (default + tracing 1%)', filters: tracing, stdoutPipe: true },
  { name: 'everything on, access log to a file', top: accessLog, filters: tracing },
  { name: 'access log only (stdout)', admin: offAdmin, stdoutPipe: true },
  { name: 'access log only, to a file', admin: offAdmin, top: accessLog },
  { name: 'debug ring only', admin: 'latency_history: { enabled: false }, metrics: { max_endpoint_series: 0 }', top: accessOff },
  { name: 'latency history and per-endpoint series only', admin: 'debug_requests: { enabled: false }', top: accessOff },
  { name: 'tracing only (1%)', admin: offAdmin, top: accessOff, filters: tracing },
  // Edge features on top of the default config: compare with the default row.
  {
    name: 'jwt_authn (cached JWKS)',
    stdoutPipe: true,
    filters: `- type: jwt_authn\n        config: { providers: [{ name: b, issuer: "https://issuer.bench", audiences: [bench], jwks: { file: "${path.join(dir, 'jwks.json')}" } }] }`,
    headers: [`Authorization: Bearer ${token}`],
  },
  {
    name: 'rbac (3 rules)',
    stdoutPipe: true,
    filters: `- type: rbac\n        config: { rules: [{ name: no-admin, action: deny, paths: [{ prefix: /admin }] }, { name: writers, action: allow, methods: [POST], paths: [{ prefix: /orders }] }, { name: readers, action: allow, methods: [GET] }] }`,
  },
  {
    name: 'local_rate_limit (never limiting)',
    stdoutPipe: true,
    filters: `- type: local_rate_limit\n        config: { key: { source: client_ip }, burst: 1000000, tokens_per_fill: 1000000, fill_interval: 1s }`,
  },
];

// BENCH_FEATURES=regex keeps only the variants whose names match (the plain and default rows always run).
const only = process.env.BENCH_FEATURES ? new RegExp(process.env.BENCH_FEATURES, 'i') : undefined;
if (only) for (let i = variants.length - 1; i >= 2; i--) if (!only.test(variants[i]!.name)) variants.splice(i, 1);

function configFor(v: Variant): string {
  const file = path.join(dir, `${v.name.replace(/\W+/g, '-')}.yaml`);
  writeFileSync(
    file,
    `log_level: warn
admin: { port: ${PORTS.admin}${v.admin ? `, ${v.admin}` : ''} }
${v.top ?? ''}
listeners:
  - name: bench
    port: ${PORTS.sidecar}
${v.filters ? `    filters:\n      ${v.filters}\n` : ''}    routes: [{ name: all, match: { prefix: / }, cluster: upstream }]
clusters:
  - name: upstream
    endpoints: ["127.0.0.1:${PORTS.upstream}"]
`,
  );
  return file;
}

const TICK_S = 1 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_S;
}

function wrk(port: number, headers: string[] = []): { rps: number; requests: number; non2xx: number } {
  const h = headers.flatMap((x) => ['-H', x]);
  const [cmd, args] = pin(LOAD_CPU, 'wrk', ['-t1', `-c${CONNECTIONS}`, `-d${SECONDS}s`, ...h, `http://127.0.0.1:${port}/`]);
  const out = execFileSync(cmd, args, { encoding: 'utf8' });
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    requests: Number(/(\d+) requests in/.exec(out)?.[1]),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

startPinned(LOAD_CPU, [path.join(root, 'dist/bench/upstream.js'), String(PORTS.upstream)]);
// A collector that accepts and discards OTLP, so the tracing variant exports for real.
startPinned(LOAD_CPU, [path.join(root, 'dist/bench/upstream.js'), String(PORTS.collector)]);
const baseline = startPinned(PROXY_CPU, [path.join(root, 'dist/bench/baseline-proxy.js'), String(PORTS.baseline), `127.0.0.1:${PORTS.upstream}`]);
await Promise.all([waitForPort(PORTS.upstream), waitForPort(PORTS.collector), waitForPort(PORTS.baseline)]);
const configs = variants.map(configFor);

const rps = new Map<string, number[]>();
const cpu = new Map<string, number[]>();
const errors = new Map<string, number>();
const add = (m: Map<string, number[]>, k: string, v: number): void => void m.set(k, [...(m.get(k) ?? []), v]);
/** req/s per variant per round: a variant is compared with another round by round (same minute, same drift). */
const byRound = new Map<string, Map<number, number>>();

process.stdout.write(`sidecar feature bench: ${ROUNDS} interleaved rounds of wrk -t1 -c${CONNECTIONS} -d${SECONDS}s per variant, fresh sidecar each\n`);
for (let round = 0; round < ROUNDS; round++) {
  add(rps, 'direct', wrk(PORTS.upstream).rps);
  const b0 = cpuSeconds(baseline.pid!);
  const b = wrk(PORTS.baseline);
  add(rps, 'bare Node proxy', b.rps);
  add(cpu, 'bare Node proxy', ((cpuSeconds(baseline.pid!) - b0) / b.requests) * 1e6);
  // Each round starts at a different variant, so none always runs first (right after the baseline's load).
  for (let k = 0; k < variants.length; k++) {
    const i = (k + round) % variants.length;
    const v = variants[i]!;
    const reader = v.stdoutPipe ? spawn(...pin(LOAD_CPU, 'cat', []), { stdio: ['pipe', 'ignore', 'inherit'] }) : undefined;
    const child = startPinned(PROXY_CPU, [path.join(root, 'bin/sidecar.js'), 'run', '-c', configs[i]!], {}, reader?.stdin ?? 'ignore');
    reader?.stdin.destroy(); // the sidecar holds the write end; cat ends when it exits
    const up = await waitForPort(PORTS.sidecar).then(
      () => true,
      () => false,
    );
    if (!up || child.exitCode !== null) {
      process.stderr.write(`variant "${v.name}" did not start (config ${configs[i]}); left out of this run\n`);
      await stop(child);
      continue;
    }
    await sleep(1500);
    wrk(PORTS.sidecar, v.headers); // warm-up: JIT, pools, JWKS cache
    emptyAccessLog();
    const c0 = cpuSeconds(child.pid!);
    const r = wrk(PORTS.sidecar, v.headers);
    add(rps, v.name, r.rps);
    byRound.set(v.name, (byRound.get(v.name) ?? new Map<number, number>()).set(round, r.rps));
    add(cpu, v.name, ((cpuSeconds(child.pid!) - c0) / r.requests) * 1e6);
    errors.set(v.name, (errors.get(v.name) ?? 0) + r.non2xx);
    await stop(child);
    emptyAccessLog();
  }
}

const med = (m: Map<string, number[]>, k: string): number => median(m.get(k) ?? [NaN]);
/** The median over rounds of a's req/s over b's in the same round (and the rounds' range), as a percentage. */
function paired(a: string, b: string): string {
  const ra = byRound.get(a);
  const rb = byRound.get(b);
  const ratios: number[] = [];
  for (const [round, x] of ra ?? []) {
    const y = rb?.get(round);
    if (y !== undefined) ratios.push((x / y) * 100);
  }
  if (ratios.length === 0) return '';
  return `${median(ratios).toFixed(1)}% (${Math.min(...ratios).toFixed(0)}-${Math.max(...ratios).toFixed(0)})`;
}
const OFF = 'observability off';
const DEFAULT = variants[1]!.name;
const lines = [
  `| variant | req/s | vs direct | vs bare Node proxy | vs observability off, by round | vs default, by round | CPU µs/req | non-2xx |`,
  '|---|---|---|---|---|---|---|---|',
  `| direct | ${med(rps, 'direct').toFixed(0)} | 100% | | | | | |`,
  `| bare Node proxy | ${med(rps, 'bare Node proxy').toFixed(0)} | ${((med(rps, 'bare Node proxy') / med(rps, 'direct')) * 100).toFixed(1)}% | 100% | | | ${med(cpu, 'bare Node proxy').toFixed(1)} | |`,
  ...variants.map((v) => {
    const r = med(rps, v.name);
    const pct = (x: number): string => `${((r / x) * 100).toFixed(1)}%`;
    return `| ${v.name} | ${r.toFixed(0)} | ${pct(med(rps, 'direct'))} | ${pct(med(rps, 'bare Node proxy'))} | ${v.name === OFF ? '' : paired(v.name, OFF)} | ${v.name === OFF || v.name === DEFAULT ? '' : paired(v.name, DEFAULT)} | ${med(cpu, v.name).toFixed(1)} | ${errors.get(v.name) ?? 0} |`;
  }),
];
process.stdout.write(`${lines.join('\n')}\n`);
process.exit(0);
