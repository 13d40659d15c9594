// `npm run bench`: the sidecar against a direct connection and a minimal node:http + undici proxy, in one run.
// Proxies are pinned to CPU 0, the load generator and upstream to CPU 1, so figures are per-core efficiency.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOAD_CPU, PROXY_CPU, have, pin, waitForPort, startPinned } from './lib.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// Fresh proxy processes per generation: one Node process can run several per cent faster or slower than another of
// the same build (code and heap layout, JIT timing), so figures are medians over rounds from several processes.
const GENERATIONS = Number(process.env.BENCH_PROCS ?? 3);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DURATION = Number(process.env.BENCH_SECONDS ?? 4);
const FIXED_SECONDS = Number(process.env.BENCH_FIXED_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const FIXED_RATE = Number(process.env.BENCH_RATE ?? 2000);
// Extra admin settings, to compare against a build that predates a default-on feature, e.g.
// BENCH_ADMIN_EXTRA='debug_requests: { enabled: false }'.
const ADMIN_EXTRA = process.env.BENCH_ADMIN_EXTRA ?? '';
const PORTS = { upstream: 18080, sidecar: 18001, admin: 18002, baseline: 18100 };
if (!have('wrk')) {
  process.stderr.write('bench needs wrk: install it with `sudo apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk`.\n');
  process.exit(1);
}



const rssMiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
}

/** CPU time (user + system) a process has used so far, in seconds. */
const TICK_S = 1 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_S; // utime, stime (fields 14 and 15 of the full line)
}

function toMs(v: string, unit: string): number {
  return Number(v) * ({ us: 0.001, ms: 1, s: 1000 }[unit] ?? 1);
}

function wrk(port: number, seconds = DURATION): WrkResult {
  const [cmd, args] = pin(LOAD_CPU, 'wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}/`]);
  const out = execFileSync(cmd, args, { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  return { rps, p50: pct('50'), p99: pct('99'), requests };
}

function fixedRate(port: number, seconds = FIXED_SECONDS): { p50: number; p99: number; received: number; sent: number } {
  const [cmd, args] = pin(LOAD_CPU, process.execPath, [path.join(root, 'dist/bench/fixed-rate.js'), `127.0.0.1:${port}`, String(FIXED_RATE), String(seconds)]);
  return JSON.parse(execFileSync(cmd, args, { encoding: 'utf8' })) as { p50: number; p99: number; received: number; sent: number };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function idleConnections(port: number, count: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    sockets.push(s);
    await new Promise<void>((resolve) => {
      s.once('data', () => resolve());
      s.write(`GET / HTTP/1.1\r\nhost: bench\r\n\r\n`);
    });
  }
  return sockets;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-bench-'));
  const config = path.join(dir, 'sidecar.yaml');
  writeFileSync(
    config,
    `admin: { port: ${PORTS.admin}${ADMIN_EXTRA ? `, ${ADMIN_EXTRA}` : ''} }
access_log: { enabled: true, path: ${path.join(dir, 'access.log')} }
listeners:
  - name: bench
    port: ${PORTS.sidecar}
    routes: [{ name: all, match: { prefix: / }, cluster: upstream }]
clusters:
  - name: upstream
    endpoints: ["127.0.0.1:${PORTS.upstream}"]
`,
  );
  startPinned(LOAD_CPU, [path.join(root, 'dist/bench/upstream.js'), String(PORTS.upstream)]);
  await waitForPort(PORTS.upstream);

  process.stdout.write(
    `sidecar bench: ${GENERATIONS} fresh process pairs x ${ROUNDS} interleaved rounds of wrk -t1 -c${CONNECTIONS} -d${DURATION}s;` +
      ` proxies on CPU ${PROXY_CPU}, load + upstream on CPU ${LOAD_CPU}\n`,
  );
  const targets = { direct: PORTS.upstream, baseline: PORTS.baseline, sidecar: PORTS.sidecar } as const;
  type Name = keyof typeof targets;
  const names = Object.keys(targets) as Name[];
  const results: Record<Name, WrkResult[]> = { direct: [], baseline: [], sidecar: [] };
  const fixed: Record<Name, { p50: number; p99: number }[]> = { direct: [], baseline: [], sidecar: [] };
  // CPU seconds and requests per proxy over all rounds: CPU per request is a second view of per-core cost, less
  // sensitive than req/s to moments when the proxy waits on the load generator.
  const cpu: Record<Name, { seconds: number; requests: number }> = {
    direct: { seconds: 0, requests: 0 },
    baseline: { seconds: 0, requests: 0 },
    sidecar: { seconds: 0, requests: 0 },
  };
  let idleRss = NaN;
  let baselineIdleRss = NaN;
  let loadedRss = NaN;
  let conns = { before: NaN, after: NaN };
  for (let g = 0; g < GENERATIONS; g++) {
    const sidecar = startPinned(PROXY_CPU, [path.join(root, 'bin/sidecar.js'), 'run', '-c', config]);
    const baseline = startPinned(PROXY_CPU, [path.join(root, 'dist/bench/baseline-proxy.js'), String(PORTS.baseline), `127.0.0.1:${PORTS.upstream}`]);
    await Promise.all([waitForPort(PORTS.sidecar), waitForPort(PORTS.baseline)]);
    await new Promise((r) => setTimeout(r, 2000)); // let start-up garbage (config worker, JIT) settle
    if (g === 0) {
      idleRss = rssMiB(sidecar.pid!);
      baselineIdleRss = rssMiB(baseline.pid!);
    }
    const pids: Partial<Record<Name, number>> = { baseline: baseline.pid!, sidecar: sidecar.pid! };
    for (const name of names) wrk(targets[name], 3); // warm-up (JIT, pools, heap sized for load)
    if (g === 0) {
      // After the warm-up, so the figure is what the connections hold, not the young generation growing to load size.
      await new Promise((r) => setTimeout(r, 1000));
      const before = rssMiB(sidecar.pid!);
      const sockets = await idleConnections(PORTS.sidecar, 1000);
      await new Promise((r) => setTimeout(r, 1000));
      conns = { before, after: rssMiB(sidecar.pid!) };
      sockets.forEach((s) => s.destroy());
    }
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate the order so no target always runs first (or right after another's load).
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + r + g) % names.length]!;
        const pid = pids[name];
        const before = pid === undefined ? 0 : cpuSeconds(pid);
        const res = wrk(targets[name]);
        if (pid !== undefined) {
          cpu[name].seconds += cpuSeconds(pid) - before;
          cpu[name].requests += res.requests;
        }
        results[name].push(res);
        process.stdout.write(
          `  process ${g + 1} round ${r + 1} ${name.padEnd(8)} ${res.rps.toFixed(0).padStart(7)} req/s  p50 ${res.p50.toFixed(2)}ms  p99 ${res.p99.toFixed(2)}ms\n`,
        );
      }
    }
    if (g === 0) loadedRss = rssMiB(sidecar.pid!);
    // A short unmeasured run first: new client connections and their upstream pool entries warm up.
    for (const name of names) fixedRate(targets[name], 2);
    for (const name of names) fixed[name].push(fixedRate(targets[name]));
    process.stdout.write(
      `  process ${g + 1} fixed ${FIXED_RATE} req/s p99: ` + names.map((n) => `${n} ${fixed[n].at(-1)!.p99.toFixed(3)}ms`).join(', ') + '\n',
    );
    for (const child of [sidecar, baseline]) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  }

  const usPerRequest = (name: Name): number => (cpu[name].seconds / cpu[name].requests) * 1e6;
  const med = (name: Name, k: keyof WrkResult): number => median(results[name].map((x) => x[k]));
  const fixedMed = (name: Name, k: 'p50' | 'p99'): number => median(fixed[name].map((x) => x[k]));
  const row = (name: Name): string =>
    `${name.padEnd(9)} ${med(name, 'rps').toFixed(0).padStart(8)} ${med(name, 'p50').toFixed(2).padStart(8)} ${med(name, 'p99').toFixed(2).padStart(8)}` +
    `   ${fixedMed(name, 'p50').toFixed(3).padStart(7)} ${fixedMed(name, 'p99').toFixed(3).padStart(7)}`;
  const lines = [
    '',
    `medians of ${GENERATIONS} x ${ROUNDS} rounds (wrk, ${CONNECTIONS} connections)   fixed ${FIXED_RATE} req/s, ${GENERATIONS} x ${FIXED_SECONDS} s`,
    'target       req/s   p50 ms   p99 ms    p50 ms  p99 ms',
    row('direct'),
    row('baseline'),
    row('sidecar'),
    '',
    `sidecar / baseline throughput: ${((med('sidecar', 'rps') / med('baseline', 'rps')) * 100).toFixed(1)}%`,
    `sidecar / direct throughput:   ${((med('sidecar', 'rps') / med('direct', 'rps')) * 100).toFixed(1)}%`,
    `CPU per request: baseline ${usPerRequest('baseline').toFixed(1)} µs, sidecar ${usPerRequest('sidecar').toFixed(1)} µs` +
      ` (baseline / sidecar: ${((usPerRequest('baseline') / usPerRequest('sidecar')) * 100).toFixed(1)}%)`,
    `added p99 at ${FIXED_RATE} req/s (sidecar - direct): ${(fixedMed('sidecar', 'p99') - fixedMed('direct', 'p99')).toFixed(3)} ms` +
      ` (baseline - direct: ${(fixedMed('baseline', 'p99') - fixedMed('direct', 'p99')).toFixed(3)} ms)`,
    `sidecar RSS: idle ${idleRss.toFixed(1)} MiB, after load ${loadedRss.toFixed(1)} MiB (baseline idle ${baselineIdleRss.toFixed(1)} MiB)`,
    `1,000 idle keep-alive connections: +${(conns.after - conns.before).toFixed(1)} MiB (${conns.before.toFixed(1)} -> ${conns.after.toFixed(1)} MiB)`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  writeFileSync(path.join(root, '.bench-last.txt'), lines.join('\n'));
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
