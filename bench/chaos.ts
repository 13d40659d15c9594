// `npm run bench:chaos`: kill one of three upstreams under steady load, with and without the resilience policies.
// Each configuration gets fresh upstreams and a fresh sidecar; open-loop load (bench/chaos-load.ts) runs CHAOS_SECONDS,
// the second upstream is SIGKILLed at 1/3 of the run and restarted on the same port at 2/3.
// Sidecar pinned to CPU 0, load generator and upstreams to CPU 1 (as in bench/http1.ts).
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HAVE_TASKSET, LOAD_CPU, PROXY_CPU, pin, sleep, waitForPort } from './lib.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SECONDS = Number(process.env.CHAOS_SECONDS ?? 30);
const RATE = Number(process.env.CHAOS_RATE ?? 500);
const CONNECTIONS = Number(process.env.CHAOS_CONNECTIONS ?? 20);
const KILL_AT_MS = (SECONDS * 1000) / 3;
const RESTART_AT_MS = (SECONDS * 2000) / 3;
const VICTIM = 1; // index of the upstream that is killed
const PORTS = { upstreams: [18201, 18202, 18203], sidecar: 18210, admin: 18211 };
// retry_budget defaults (src/config/schema.ts): retry_ratio 0.2, min_retries_per_second 10, ttl 10s.
const BUDGET = { ratio: 0.2, minPerSecond: 10, ttlSeconds: 10 };

const children = new Set<ChildProcess>();
function start(cpu: string, args: string[], stdio: StdioOptions): ChildProcess {
  const [cmd, argv] = pin(cpu, process.execPath, args);
  const child = spawn(cmd, argv, { stdio });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
const killAll = (): void => {
  for (const c of children) c.kill('SIGKILL');
};
process.on('exit', killAll);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

/** Waits for a child to exit, SIGKILLing it after timeoutMs. */
function stop(child: ChildProcess, signal: NodeJS.Signals, timeoutMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill(signal);
  });
}

/** One upstream slot: a port whose process may be killed and restarted; its tally survives SIGKILL. */
class Upstream {
  received = 0; // proxied requests, all incarnations
  health = 0; // health probes reported by incarnations that exited on SIGTERM
  child: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly name: string,
  ) {}

  async start(): Promise<void> {
    const child = start(LOAD_CPU, [path.join(root, 'dist/bench/chaos-upstream.js'), String(this.port), this.name], ['pipe', 'pipe', 'pipe']);
    this.child = child;
    // One "." per proxied request, written synchronously before the answer: exact even across SIGKILL.
    child.stdout!.on('data', (d: Buffer) => {
      this.received += d.length;
    });
    let err = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      err += d;
      for (let i = err.indexOf('\n'); i >= 0; i = err.indexOf('\n')) {
        const line = err.slice(0, i);
        err = err.slice(i + 1);
        if (line.startsWith('count ')) this.health += (JSON.parse(line.slice(6)) as { health: number }).health;
        else if (!line.startsWith('ready ')) process.stderr.write(`[${this.name}] ${line}\n`);
      }
    });
    await waitForPort(this.port);
  }

  kill(): void {
    this.child?.kill('SIGKILL');
  }

  async stop(): Promise<void> {
    if (this.child) await stop(this.child, 'SIGTERM');
    await sleep(20); // let the last stdout/stderr bytes arrive
  }
}

interface LoadResult {
  sent: number;
  ok: number;
  errors: number;
  non2xx: number;
  connErrors: number;
  connectFailures: number;
  unanswered: number;
  statuses: Record<string, number>;
  flags: Record<string, number>;
  errorsPerSecond: Record<string, number>;
  p50: number;
  p99: number;
  max: number;
}

function runLoad(seconds: number): { child: ChildProcess; result: Promise<LoadResult> } {
  const child = start(
    LOAD_CPU,
    [path.join(root, 'dist/bench/chaos-load.js'), `127.0.0.1:${PORTS.sidecar}`, String(RATE), String(seconds), String(CONNECTIONS)],
    ['ignore', 'pipe', 'inherit'],
  );
  const result = new Promise<LoadResult>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => (out += d));
    // Bounded: the load ends after `seconds` plus at most 5 s of draining.
    const t = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000);
    child.once('exit', (code) => {
      clearTimeout(t);
      try {
        resolve(JSON.parse(out) as LoadResult);
      } catch {
        reject(new Error(`chaos-load exited with ${code}: ${out}`));
      }
    });
  });
  return { child, result };
}

async function metrics(): Promise<Record<string, number>> {
  const sums: Record<string, number> = {};
  try {
    const res = await fetch(`http://127.0.0.1:${PORTS.admin}/metrics`, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    const wanted = [
      'sidecar_retries_total',
      'sidecar_retry_budget_exhausted_total',
      'sidecar_circuit_breaker_open_total',
      'sidecar_outlier_ejections_total',
      'sidecar_health_checks_total',
      'sidecar_cluster_panic_total',
      'sidecar_upstream_stale_connection_replays_total',
    ];
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue;
      const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
      if (!m || !wanted.includes(m[1]!)) continue;
      // Keep the label that tells kinds apart (reason / result / threshold) in the key.
      const kind = /(?:reason|result|threshold)="([^"]*)"/.exec(m[2] ?? '')?.[1];
      const key = kind ? `${m[1]}{${kind}}` : m[1]!;
      sums[key] = (sums[key] ?? 0) + Number(m[3]);
    }
  } catch (err) {
    process.stderr.write(`metrics unavailable: ${(err as Error).message}\n`);
  }
  return sums;
}

interface Outcome {
  name: string;
  load: LoadResult;
  upstream: number[];
  metrics: Record<string, number>;
}

function config(dir: string, resilient: boolean): string {
  const file = path.join(dir, `chaos-${resilient ? 'resilient' : 'plain'}.yaml`);
  const endpoints = PORTS.upstreams.map((p) => `"127.0.0.1:${p}"`).join(', ');
  const route = resilient
    ? `{ name: all, match: { prefix: / }, cluster: upstream, retry: { retry_on: [connect-failure, reset, gateway-error], max_retries: 2, per_try_timeout: 500ms } }`
    : `{ name: all, match: { prefix: / }, cluster: upstream }`;
  const cluster = resilient
    ? `
    outlier_detection: { consecutive_5xx: 3, consecutive_gateway_failure: 3, base_ejection_time: 2s, always_eject_one: true }
    health_check: { path: /healthz, interval: 500ms, timeout: 250ms, unhealthy_threshold: 2, healthy_threshold: 1 }`
    : '';
  writeFileSync(
    file,
    `admin: { address: 127.0.0.1, port: ${PORTS.admin} }
access_log: { enabled: true, path: ${path.join(dir, `access-${resilient ? 'resilient' : 'plain'}.log`)} }
log_level: warn
drain_timeout: 1s
watch: false
listeners:
  - name: chaos
    address: 127.0.0.1
    port: ${PORTS.sidecar}
    routes: [${route}]
clusters:
  - name: upstream
    endpoints: [${endpoints}]${cluster}
`,
  );
  return file;
}

async function runConfig(dir: string, resilient: boolean): Promise<Outcome> {
  const name = resilient ? 'resilient' : 'plain';
  const ups = PORTS.upstreams.map((p, i) => new Upstream(p, `up${i + 1}`));
  await Promise.all(ups.map((u) => u.start()));
  const log = openSync(path.join(dir, `sidecar-${name}.log`), 'a');
  const sidecar = start(PROXY_CPU, [path.join(root, 'bin/sidecar.js'), 'run', '-c', config(dir, resilient)], ['ignore', log, log]);
  closeSync(log);
  try {
    await Promise.all([waitForPort(PORTS.sidecar), waitForPort(PORTS.admin)]);
    await sleep(1000); // first health probes, config worker settles
    // Warm-up (unmeasured): pools and JIT; its upstream requests are subtracted below.
    await runLoad(2).result;
    await sleep(200);
    const base = ups.map((u) => u.received);
    const before = await metrics();

    process.stdout.write(
      `  ${name}: ${SECONDS}s at ${RATE} req/s over ${CONNECTIONS} connections; SIGKILL ${ups[VICTIM]!.name} (:${ups[VICTIM]!.port}) at ` +
        `${(KILL_AT_MS / 1000).toFixed(1)}s, restart at ${(RESTART_AT_MS / 1000).toFixed(1)}s\n`,
    );
    const load = runLoad(SECONDS);
    const killTimer = setTimeout(() => ups[VICTIM]!.kill(), KILL_AT_MS);
    let restarted: Promise<void> = Promise.resolve();
    const restartTimer = setTimeout(() => {
      restarted = ups[VICTIM]!.start().catch((err: unknown) => {
        process.stderr.write(`restart failed: ${(err as Error).message}\n`);
      });
    }, RESTART_AT_MS);
    let result: LoadResult;
    try {
      result = await load.result;
    } finally {
      clearTimeout(killTimer);
      clearTimeout(restartTimer);
    }
    await restarted;
    await sleep(300); // last upstream tallies
    const after = await metrics();
    const delta: Record<string, number> = {};
    for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) !== 0) delta[k] = v - (before[k] ?? 0);
    const upstream = ups.map((u, i) => u.received - base[i]!);
    return { name, load: result, upstream, metrics: delta };
  } finally {
    await stop(sidecar, 'SIGTERM');
    await Promise.all(ups.map((u) => u.stop()));
  }
}

const pct = (n: number, d: number): string => (d ? ((n / d) * 100).toFixed(3) : 'n/a');

async function main(): Promise<void> {
  if (!Number.isFinite(SECONDS) || SECONDS < 3) throw new Error('CHAOS_SECONDS must be a number >= 3');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-chaos-'));
  process.stdout.write(
    `sidecar chaos run: 3 upstreams, ${RATE} req/s open loop, ${CONNECTIONS} keep-alive connections, ${SECONDS}s per configuration` +
      `${HAVE_TASKSET ? `; sidecar on CPU ${PROXY_CPU}, load + upstreams on CPU ${LOAD_CPU}` : ''}\n  logs: ${dir}\n`,
  );
  const outcomes: Outcome[] = [];
  for (const resilient of [false, true]) outcomes.push(await runConfig(dir, resilient));

  // Retry budget: over any ttl window, retries <= ratio x requests + min_retries_per_second x ttl.
  const windows = Math.ceil(SECONDS / BUDGET.ttlSeconds);
  const minimum = BUDGET.minPerSecond * BUDGET.ttlSeconds * windows;
  const allowed = (o: Outcome): number => (1 + BUDGET.ratio) + minimum / Math.max(1, o.load.sent);
  const up = (o: Outcome): number => o.upstream.reduce((a, b) => a + b, 0);
  const row = (o: Outcome): string =>
    `${o.name.padEnd(10)} ${String(o.load.sent).padStart(9)} ${String(o.load.errors).padStart(7)} ${pct(o.load.errors, o.load.sent).padStart(8)}` +
    ` ${String(up(o)).padStart(9)} ${(up(o) / Math.max(1, o.load.sent)).toFixed(3).padStart(7)} ${allowed(o).toFixed(3).padStart(7)}` +
    `   ${o.load.p50.toFixed(2).padStart(6)} ${o.load.p99.toFixed(2).padStart(7)}`;
  const detail = (o: Outcome): string[] => {
    const window = Object.entries(o.load.errorsPerSecond)
      .map(([s, n]) => `${s}s:${n}`)
      .join(' ');
    return [
      `${o.name}:`,
      `  client: ${o.load.ok} ok, ${o.load.non2xx} non-2xx ${JSON.stringify(o.load.statuses)}, flags ${JSON.stringify(o.load.flags)},` +
        ` ${o.load.connErrors} lost on connections (${o.load.connectFailures} failed connects), ${o.load.unanswered} unanswered`,
      `  errors by second of the run: ${window || 'none'}`,
      `  upstream received: ${o.upstream.map((n, i) => `up${i + 1} ${n}`).join(', ')} (health probes not counted)`,
      `  sidecar metrics during the run: ${Object.keys(o.metrics).length ? Object.entries(o.metrics).map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`,
    ];
  };
  const [plain, resilient] = outcomes as [Outcome, Outcome];
  const errRate = (o: Outcome): number => o.load.errors / Math.max(1, o.load.sent);
  const ratio = (o: Outcome): number => up(o) / Math.max(1, o.load.sent);
  const lines = [
    '',
    `config      client req  errors  error %  upstream   ratio allowed   p50 ms  p99 ms`,
    row(plain),
    row(resilient),
    '',
    ...detail(plain),
    ...detail(resilient),
    '',
    `client error rate: plain ${pct(plain.load.errors, plain.load.sent)}% -> resilient ${pct(resilient.load.errors, resilient.load.sent)}%` +
      ` (${plain.load.errors} -> ${resilient.load.errors} errors)`,
    `target error rate < 0.1% with retries + outlier detection: ${errRate(resilient) < 0.001 ? 'PASS' : 'FAIL'} (${pct(resilient.load.errors, resilient.load.sent)}%)`,
    `target amplification <= ${(1 + BUDGET.ratio).toFixed(1)} + min_retries_per_second x ttl x ${windows} window(s) / client requests = ${allowed(resilient).toFixed(3)}:` +
      ` ${ratio(resilient) <= allowed(resilient) ? 'PASS' : 'FAIL'} (${ratio(resilient).toFixed(3)})`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
