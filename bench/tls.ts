// `npm run bench`, TLS rows: HTTPS inbound, HTTP/2 over TLS inbound and a two-sidecar mTLS hop, each measured in the
// same run as its plaintext twin (same processes, interleaved rounds): throughput ratio, added p99 at a fixed rate,
// and the handshake count that shows connections are reused. BENCH_TLS=0 skips it. Certificates come from the CLI.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOAD_CPU, PROXY_CPU, have, pin, sleep, waitForPort, children, startPinned } from './lib.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ROUNDS = Number(process.env.BENCH_TLS_ROUNDS ?? process.env.BENCH_ROUNDS ?? 3);
const DURATION = Number(process.env.BENCH_SECONDS ?? 4);
const FIXED_SECONDS = Number(process.env.BENCH_FIXED_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
// Below what the two-sidecar hop (three proxies on one CPU) can carry, so p99 is latency, not queueing.
const FIXED_RATE = Number(process.env.BENCH_TLS_RATE ?? 500);
const H2_CLIENTS = 10;
const H2_STREAMS = 10;
const PORTS = { upstream: 18280, plain: 18201, tls: 18202, admin: 18203, bPlain: 18211, bMtls: 18212, bAdmin: 18213, aPlain: 18221, aMtls: 18222, aAdmin: 18223 };

if (process.env.BENCH_TLS === '0') {
  process.stdout.write('\nTLS rows skipped (BENCH_TLS=0)\n');
  process.exit(0);
}


interface Load {
  rps: number;
  p99: number;
  requests: number;
}

const toMs = (v: string, unit: string): number => Number(v) * ({ us: 0.001, ms: 1, s: 1000 }[unit] ?? 1);

/** wrk speaks https itself (no verification); keep-alive on every connection. */
function wrk(url: string, seconds = DURATION): Load {
  const [cmd, args] = pin(LOAD_CPU, 'wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', url]);
  const out = execFileSync(cmd, args, { encoding: 'utf8' });
  const m = /^\s+99%\s+([\d.]+)(us|ms|s)/m.exec(out);
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]), p99: m ? toMs(m[1]!, m[2]!) : NaN, requests: Number(/(\d+) requests in/.exec(out)?.[1]) };
}

/** h2load: h2c prior knowledge for http://, ALPN h2 for https://; no percentiles, so p99 comes from the fixed-rate run. */
function h2load(url: string, seconds = DURATION): Load {
  const [cmd, args] = pin(LOAD_CPU, 'h2load', [`-c${H2_CLIENTS}`, `-m${H2_STREAMS}`, `-D${seconds}`, url]);
  const out = execFileSync(cmd, args, { encoding: 'utf8' });
  const done = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded/.exec(out);
  if (!done || done[1] !== done[2]) throw new Error(`h2load: not every request succeeded:\n${out}`);
  return { rps: Number(/finished in [\d.]+s, ([\d.]+) req\/s/.exec(out)?.[1]), p99: NaN, requests: Number(done[2]) };
}

function fixedRate(port: number, mode: string, seconds = FIXED_SECONDS): number {
  const [cmd, args] = pin(LOAD_CPU, process.execPath, [path.join(root, 'dist/bench/fixed-rate.js'), `127.0.0.1:${port}`, String(FIXED_RATE), String(seconds), '32', mode]);
  const r = JSON.parse(execFileSync(cmd, args, { encoding: 'utf8' })) as { p99: number; received: number; sent: number; errors: number };
  if (r.received < r.sent || r.errors > 0) throw new Error(`fixed-rate ${mode} on ${port}: ${r.received}/${r.sent} answered, ${r.errors} errors`);
  return r.p99;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** A counter's value from a sidecar's /metrics (0 when the series is absent). */
async function counter(adminPort: number, series: string): Promise<number> {
  // A fresh connection each time (no pooled one the admin server may have closed while idle).
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`, { headers: { connection: 'close' } })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** h2load from Debian's nghttp2-client: installed with apt-get when we are root, else the row is skipped. */
function ensureH2load(): boolean {
  if (have('h2load')) return true;
  const command = 'apt-get install -y nghttp2-client';
  if (process.getuid?.() === 0 && have('apt-get')) {
    process.stdout.write(`h2load missing: running \`${command}\`\n`);
    try {
      execFileSync('apt-get', ['install', '-y', '-q', 'nghttp2-client'], { stdio: ['ignore', 'ignore', 'inherit'] });
    } catch {
      // reported below
    }
    if (have('h2load')) return true;
  }
  process.stdout.write(`HTTP/2 over TLS row skipped: h2load is not installed; install it with \`sudo ${command}\` (Debian/Ubuntu)\n`);
  return false;
}

function makeCerts(dir: string): Record<'ca' | 'server' | 'client', { cert: string; key: string; ca: string }> {
  const certs = (...args: string[]): void => void execFileSync(process.execPath, [path.join(root, 'bin/sidecar.js'), 'certs', ...args], { stdio: 'ignore' });
  certs('init-ca', '--trust-domain', 'bench.local', '--out', path.join(dir, 'ca'));
  certs('issue', '--ca', path.join(dir, 'ca'), '--identity', 'spiffe://bench.local/ns/bench/sa/server', '--out', path.join(dir, 'server'), '--dns', 'localhost', '--ip', '127.0.0.1', '--ttl', '720h');
  certs('issue', '--ca', path.join(dir, 'ca'), '--identity', 'spiffe://bench.local/ns/bench/sa/client', '--out', path.join(dir, 'client'), '--ttl', '720h');
  const files = (n: string): { cert: string; key: string; ca: string } => ({ cert: path.join(dir, n, 'cert.pem'), key: path.join(dir, n, 'key.pem'), ca: path.join(dir, n, 'ca.pem') });
  return { ca: files('ca'), server: files('server'), client: files('client') };
}

function configs(dir: string): { inbound: string; b: string; a: string } {
  const c = makeCerts(dir);
  const app = `clusters:\n  - name: app\n    endpoints: ["127.0.0.1:${PORTS.upstream}"]\n`;
  const route = 'routes: [{ name: all, match: { prefix: / }, cluster: app }]';
  const write = (name: string, text: string): string => {
    const file = path.join(dir, `${name}.yaml`);
    writeFileSync(file, `${text}drain_delay: 0s\n`);
    return file;
  };
  const inbound = write(
    'inbound',
    `admin: { port: ${PORTS.admin} }
access_log: { enabled: true, path: ${path.join(dir, 'inbound-access.log')} }
listeners:
  - { name: plain, port: ${PORTS.plain}, ${route} }
  - name: tls
    port: ${PORTS.tls}
    tls: { cert: ${c.server.cert}, key: ${c.server.key} }
    ${route}
${app}`,
  );
  const b = write(
    'b',
    `admin: { port: ${PORTS.bAdmin} }
access_log: { enabled: true, path: ${path.join(dir, 'b-access.log')} }
listeners:
  - { name: plain, port: ${PORTS.bPlain}, ${route} }
  - name: mtls
    port: ${PORTS.bMtls}
    tls: { cert: ${c.server.cert}, key: ${c.server.key}, client_ca: ${c.server.ca}, require_client_cert: true, forward_identity_header: x-peer-identity }
    ${route}
${app}`,
  );
  const a = write(
    'a',
    `admin: { port: ${PORTS.aAdmin} }
access_log: { enabled: true, path: ${path.join(dir, 'a-access.log')} }
listeners:
  - { name: plain, port: ${PORTS.aPlain}, routes: [{ name: all, match: { prefix: / }, cluster: b-plain }] }
  - { name: mtls, port: ${PORTS.aMtls}, routes: [{ name: all, match: { prefix: / }, cluster: b-mtls }] }
clusters:
  - name: b-plain
    endpoints: ["127.0.0.1:${PORTS.bPlain}"]
  - name: b-mtls
    endpoints: ["127.0.0.1:${PORTS.bMtls}"]
    tls: { ca: ${c.client.ca}, cert: ${c.client.cert}, key: ${c.client.key}, expected_identities: ["spiffe://bench.local/ns/bench/sa/server"] }
`,
  );
  return { inbound, b, a };
}

interface Pair {
  name: string;
  plain: { label: string; run: () => Load; fixed: () => number };
  tls: { label: string; run: () => Load; fixed: () => number };
  /** TLS handshakes so far at the TLS side's listener (a counter from /metrics). */
  handshakes: () => Promise<number>;
  /** Client connections one load run of the TLS side opens (wrk, h2load), and one fixed-rate run. */
  conns: { run: number; fixed: number };
  /** What the handshakes count, in words. */
  where: string;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-bench-tls-'));
  const files = configs(dir);
  const withH2 = ensureH2load();
  startPinned(LOAD_CPU, [path.join(root, 'dist/bench/upstream.js'), String(PORTS.upstream)]);
  for (const file of [files.inbound, files.b, files.a]) startPinned(PROXY_CPU, [path.join(root, 'bin/sidecar.js'), 'run', '-c', file]);
  await Promise.all([PORTS.upstream, PORTS.tls, PORTS.bMtls, PORTS.aMtls].map((p) => waitForPort(p)));
  await sleep(2000); // start-up garbage (config worker, JIT) settles

  const url = (scheme: string, port: number): string => `${scheme}://127.0.0.1:${port}/`;
  const tlsConns = (admin: number, listener: string, transport: string): Promise<number> =>
    counter(admin, `sidecar_downstream_transport_connections_total{listener="${listener}",transport="${transport}"}`);
  const pairs: Pair[] = [
    {
      name: 'HTTPS inbound (HTTP/1.1 keep-alive)',
      plain: { label: 'http', run: () => wrk(url('http', PORTS.plain)), fixed: () => fixedRate(PORTS.plain, 'h1') },
      tls: { label: 'https', run: () => wrk(url('https', PORTS.tls)), fixed: () => fixedRate(PORTS.tls, 'h1-tls') },
      handshakes: () => tlsConns(PORTS.admin, 'tls', 'tls'),
      conns: { run: CONNECTIONS, fixed: 32 },
      where: 'at the listener',
    },
  ];
  if (withH2) {
    pairs.push({
      name: `HTTP/2 inbound (h2load -c${H2_CLIENTS} -m${H2_STREAMS})`,
      plain: { label: 'h2c', run: () => h2load(url('http', PORTS.plain)), fixed: () => fixedRate(PORTS.plain, 'h2c') },
      tls: { label: 'h2 tls', run: () => h2load(url('https', PORTS.tls)), fixed: () => fixedRate(PORTS.tls, 'h2-tls') },
      handshakes: () => tlsConns(PORTS.admin, 'tls', 'tls'),
      conns: { run: H2_CLIENTS, fixed: 8 },
      where: 'at the listener',
    });
  }
  pairs.push({
    name: 'two-sidecar hop (client -> A -> B -> upstream)',
    plain: { label: 'hop plain', run: () => wrk(url('http', PORTS.aPlain)), fixed: () => fixedRate(PORTS.aPlain, 'h1') },
    tls: { label: 'hop mTLS', run: () => wrk(url('http', PORTS.aMtls)), fixed: () => fixedRate(PORTS.aMtls, 'h1') },
    handshakes: () => tlsConns(PORTS.bAdmin, 'mtls', 'mtls'),
    conns: { run: CONNECTIONS, fixed: 32 },
    where: "at B, from A's pool",
  });

  process.stdout.write(
    `\nTLS rows: ${ROUNDS} interleaved rounds of ${DURATION}s per target, then ${FIXED_SECONDS}s at ${FIXED_RATE} req/s;` +
      ` certificates from \`sidecar certs\` in ${dir}\n`,
  );
  const lines = ['', `TLS: medians of ${ROUNDS} rounds; p99 at fixed ${FIXED_RATE} req/s`, 'row                                              req/s  p99@rate   TLS/plain  added p99  connection reuse (TLS side, all its runs)'];
  for (const pair of pairs) {
    const handshakesBefore = await pair.handshakes();
    for (const side of [pair.plain, pair.tls]) side.run(); // warm-up: JIT, pools, handshakes
    const loads: Record<'plain' | 'tls', Load[]> = { plain: [], tls: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const key of (r % 2 ? ['tls', 'plain'] : ['plain', 'tls']) as Array<'plain' | 'tls'>) {
        const res = pair[key].run();
        loads[key].push(res);
        process.stdout.write(`  ${pair[key].label.padEnd(10)} round ${r + 1} ${res.rps.toFixed(0).padStart(7)} req/s\n`);
      }
    }
    pair.plain.fixed(); // unmeasured: new connections warm up
    pair.tls.fixed();
    const p99 = { plain: pair.plain.fixed(), tls: pair.tls.fixed() };
    const rps = { plain: median(loads.plain.map((l) => l.rps)), tls: median(loads.tls.map((l) => l.rps)) };
    const requests = loads.tls.reduce((n, l) => n + l.requests, 0);
    const clientConns = (ROUNDS + 1) * pair.conns.run + 2 * pair.conns.fixed;
    const handshakes = (await pair.handshakes()) - handshakesBefore;
    const reuse = `${handshakes} handshakes ${pair.where} for ${clientConns} client connections, ${(requests / Math.max(1, handshakes)).toFixed(0)} requests each`;
    lines.push(`${pair.name}`);
    lines.push(`  ${pair.plain.label.padEnd(44)} ${rps.plain.toFixed(0).padStart(8)} ${p99.plain.toFixed(3).padStart(8)}ms`);
    lines.push(
      `  ${pair.tls.label.padEnd(44)} ${rps.tls.toFixed(0).padStart(8)} ${p99.tls.toFixed(3).padStart(8)}ms` +
        `   ${((rps.tls / rps.plain) * 100).toFixed(1).padStart(7)}%  ${(p99.tls - p99.plain >= 0 ? '+' : '') + (p99.tls - p99.plain).toFixed(3)}ms  ${reuse}`,
    );
  }
  lines.push('');
  process.stdout.write(lines.join('\n'));
  appendFileSync(path.join(root, '.bench-last.txt'), lines.join('\n'));
  process.exit(0);
}

main().catch((err: unknown) => {
  const cause = (err as { cause?: unknown }).cause;
  process.stderr.write(`bench (TLS rows) failed: ${(err as Error).stack ?? String(err)}${cause ? `\ncause: ${String(cause)}` : ''}\n`);
  for (const c of children) if (c.exitCode !== null) process.stderr.write(`process ${c.spawnargs.slice(-1)[0]} exited with ${c.exitCode}\n`);
  process.exit(1);
});
