// A mesh of hosts as Linux network namespaces on one bridge, shared by test/integration/mesh-netns.test.ts and
// `npm run mesh:up` / `mesh:down` (scripts/mesh.ts). Host i is the namespace scm<i>-<id> with 198.18.<subnet>.<i>/24
// on a veth to the bridge scbr-<id> (the benchmarking range: no packet leaves the machine); the root namespace holds
// 198.18.<subnet>.254 on the bridge, where etcd and a TCP fault relay listen. Each host runs an app (127.0.0.1:8080)
// and its sidecar: `inbound` (mTLS, HTTP/2) on the host address -> the app, `outbound` on 127.0.0.1:15001 -> cluster
// `backend`, discovered through etcd. Every sidecar registers its app under a short lease (host 1 as `frontend`, the
// others as `backend`); one of them registers the relay's address instead of its own, so its link can be slowed or
// made lossy from outside.
// Every process is detached and recorded in <dir>/state.json, so a later process (mesh:down, a test's finally)
// removes everything: processes by pid (checked to be ours), namespaces, the bridge, the directory.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { etcdArgs } from '../test/helpers/etcd.js';
import { startFaultRelay } from '../test/helpers/fault-relay.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin', 'sidecar.js');
/** This module's compiled file: it is also the relay process's entry (`node netns-mesh.js relay ...`). */
const SELF = fileURLToPath(import.meta.url);

export const TRUST_DOMAIN = 'mesh.test';
export const identityOf = (service: string): string => `spiffe://${TRUST_DOMAIN}/ns/mesh/sa/${service}`;

export interface MeshOptions {
  /** 1-6 letters/digits: part of every interface and namespace name (Linux allows 15 characters). */
  readonly id: string;
  /** Third octet of 198.18.<subnet>.0/24. */
  readonly subnet: number;
  /** State directory (configs, certificates, logs, etcd data, state.json); created, removed by meshDown. */
  readonly dir: string;
  /** Hosts (at least 3); default 4. */
  readonly hosts?: number;
  /** Registration lease TTL; default 2s. */
  readonly leaseTtl?: string;
  /** The host whose registered address is the fault relay's; default 3. */
  readonly relayHost?: number;
}

export interface MeshHost {
  readonly i: number;
  readonly ns: string;
  readonly addr: string;
  /** The veth end inside the namespace: `ip -n <ns> link set <veth> down` cuts the host off. */
  readonly veth: string;
  /** Its peer on the bridge, in the root namespace. */
  readonly peer: string;
  /** The service it registers: "frontend" (host 1, the caller) or "backend" (the others); also its identity. */
  readonly service: 'frontend' | 'backend';
  /** What it registers: its inbound listener, or the relay in front of it. */
  readonly registered: string;
  readonly admin: string;
  readonly config: string;
}

export interface MeshState {
  readonly id: string;
  readonly subnet: number;
  readonly dir: string;
  readonly bridge: string;
  /** The root namespace's address on the bridge (etcd, relay). */
  readonly gateway: string;
  readonly etcdUrl: string;
  readonly hosts: MeshHost[];
  /** The relay: `listen` is what the relay host registers; `control` takes GET /?latency=MS&loss=P&down=0|1. */
  readonly relay: { readonly host: number; readonly listen: string; readonly target: string; readonly control: string };
  /** Every process started, with what it is. */
  readonly processes: { pid: number; what: string }[];
}

const STATE = 'state.json';
const RELAY_PORT = 15106;
const RELAY_CONTROL_PORT = 15199;

/** Names and addresses only (pure): what meshUp builds. */
export function planMesh(o: MeshOptions): Omit<MeshState, 'processes'> {
  if (!/^[a-z0-9]{1,6}$/.test(o.id)) throw new Error(`mesh id "${o.id}": 1-6 lower-case letters or digits`);
  if (!(Number.isInteger(o.subnet) && o.subnet >= 0 && o.subnet <= 255)) throw new Error(`subnet ${o.subnet}: 0..255`);
  const n = o.hosts ?? 4;
  const relayHost = o.relayHost ?? 3;
  const net = `198.18.${o.subnet}`;
  const gateway = `${net}.254`;
  const relay = { host: relayHost, listen: `${gateway}:${RELAY_PORT}`, target: `${net}.${relayHost}:15006`, control: `http://${gateway}:${RELAY_CONTROL_PORT}` };
  const hosts = Array.from({ length: n }, (_, k): MeshHost => {
    const i = k + 1;
    const addr = `${net}.${i}`;
    const service = i === 1 ? 'frontend' : 'backend';
    return {
      i,
      ns: `scm${i}-${o.id}`,
      addr,
      veth: `scv${i}-${o.id}`,
      peer: `scp${i}-${o.id}`,
      service,
      registered: i === relayHost ? relay.listen : `${addr}:15006`,
      admin: `http://${addr}:15000`,
      config: path.join(o.dir, `host${i}.yaml`),
    };
  });
  return { id: o.id, subnet: o.subnet, dir: o.dir, bridge: `scbr-${o.id}`, gateway, etcdUrl: `http://${gateway}:2379`, hosts, relay };
}

/** One host's sidecar config (YAML). */
export function hostConfig(h: MeshHost, m: Omit<MeshState, 'processes'>, certs: string, leaseTtl: string): string {
  const own = path.join(certs, `host${h.i}`);
  const tlsFiles = `cert: ${own}/cert.pem, key: ${own}/key.pem`;
  const register = `register:
  endpoints: ["${m.etcdUrl}"]
  service: ${h.service}
  address: "${h.registered}"
  ttl: ${leaseTtl}
  timeout: 1s
  health_url: http://127.0.0.1:8080/healthz
`;
  return `# host ${h.i} of mesh ${m.id} (scripts/netns-mesh.ts)
admin: { address: ${h.addr}, port: 15000 }
listeners:
  - name: inbound
    address: ${h.addr}
    port: 15006
    tls: { ${tlsFiles}, client_ca: ${own}/ca.pem, require_client_cert: true, allowed_identities: ["${identityOf('*')}"], forward_identity_header: x-peer-identity }
    routes: [{ name: app, match: { prefix: / }, cluster: app }]
  - name: outbound
    address: 127.0.0.1
    port: 15001
    hop_marker: ignore
    routes:
      - name: backend
        match: { prefix: / }
        cluster: backend
        timeout: 4s
        retry: { max_retries: 2, per_try_timeout: 1s, retry_on: [connect-failure, refused-stream, reset, gateway-error] }
clusters:
  - { name: app, endpoints: ["127.0.0.1:8080"] }
  - name: backend
    peer: sidecar
    protocol: h2
    tls: { ca: ${own}/ca.pem, ${tlsFiles}, expected_identities: ["${identityOf('backend')}"] }
    connect_timeout: 300ms
    lb: { policy: least_request }
    h2: { keepalive_interval: 1s, keepalive_timeout: 500ms }
    outlier_detection: { consecutive_gateway_failure: 2, consecutive_5xx: 2, interval: 1s, base_ejection_time: 5s, max_ejection_percent: 50 }
    discovery:
      etcd: { endpoints: ["${m.etcdUrl}"], service: backend, timeout: 1s }
      empty_grace: 5s
${register}`;
}

/** The app on every host: answers its name; /healthz 200. */
const APP_JS = `const name = process.argv[1]; require('http').createServer((q, s) => { if (q.url === '/healthz') return s.end('ok'); s.setHeader('content-type', 'text/plain'); s.end(name); }).listen(8080, '127.0.0.1');`;

const run = (args: readonly string[]): string => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
const attempt = (args: readonly string[]): boolean => {
  try {
    execFileSync(args[0]!, args.slice(1), { stdio: 'ignore', timeout: 20_000 });
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function writeState(s: MeshState): void {
  writeFileSync(path.join(s.dir, STATE), `${JSON.stringify(s, null, 2)}\n`);
}

export function readState(dir: string): MeshState | undefined {
  const file = path.join(dir, STATE);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as MeshState) : undefined;
}

/** Starts a detached process (it outlives this one) logging to <dir>/logs/<name>.log, and records it. */
function launch(s: MeshState, what: string, cmd: readonly string[]): number {
  const log = openSync(path.join(s.dir, 'logs', `${what}.log`), 'a');
  const child = spawn(cmd[0]!, cmd.slice(1), { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${what}: ${cmd.join(' ')}`);
  s.processes.push({ pid: child.pid, what });
  writeState(s);
  return child.pid;
}

async function until(cond: () => Promise<boolean> | boolean, what: string, timeoutMs: number, s: MeshState): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`mesh ${s.id}: timed out waiting for ${what} (logs in ${path.join(s.dir, 'logs')})`);
    await sleep(100);
  }
}

const httpOk = async (url: string): Promise<boolean> => {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
};

/** What host 1's sidecar knows of cluster `backend` (GET /clusters). */
export async function backendEndpoints(s: MeshState, host = 1): Promise<{ address: string; ejected: boolean; source: string; requests: number }[]> {
  const res = await fetch(`${s.hosts[host - 1]!.admin}/clusters`, { signal: AbortSignal.timeout(2000) });
  const body = (await res.json()) as { clusters: { name: string; endpoints: { address: string; ejected: boolean; source: string; requests: number }[] }[] };
  return body.clusters.find((c) => c.name === 'backend')?.endpoints ?? [];
}

/** Retries host 1's sidecar sent to cluster `backend` so far (sidecar_retries_total, every condition). */
export async function backendRetries(s: MeshState): Promise<number> {
  const text = await (await fetch(`${s.hosts[0]!.admin}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  let n = 0;
  for (const m of text.matchAll(/^sidecar_retries_total\{[^}]*cluster="backend"[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

/**
 * Builds the mesh and returns once host 1's sidecar sees every backend through etcd. On failure it removes what it
 * built and rethrows. Needs root (ip netns), etcd and node.
 */
export async function meshUp(o: MeshOptions): Promise<MeshState> {
  const plan = planMesh(o);
  if (readState(o.dir) !== undefined) throw new Error(`${o.dir} already holds a mesh (${STATE}); remove it first (mesh:down)`);
  mkdirSync(path.join(o.dir, 'logs'), { recursive: true });
  chmodSync(o.dir, 0o755);
  const s: MeshState = { ...plan, processes: [] };
  writeState(s);
  try {
    await build(s, o.leaseTtl ?? '2s');
    return s;
  } catch (err) {
    await meshDown(o.dir);
    throw err;
  }
}

async function build(s: MeshState, leaseTtl: string): Promise<void> {
  // Certificates by the sidecar's own CA commands: one trust domain, a workload identity per host.
  const certs = path.join(s.dir, 'certs');
  run([process.execPath, BIN, 'certs', 'init-ca', '--trust-domain', TRUST_DOMAIN, '--out', path.join(certs, 'ca')]);
  await Promise.all(
    s.hosts.map(
      (h) =>
        new Promise<void>((resolve, reject) => {
          const args = [BIN, 'certs', 'issue', '--ca', path.join(certs, 'ca'), '--identity', identityOf(h.service), '--out', path.join(certs, `host${h.i}`), '--ip', h.addr];
          execFile(process.execPath, args, { timeout: 30_000 }, (err, _out, stderr) => (err ? reject(new Error(`sidecar certs issue: ${stderr}`)) : resolve()));
        }),
    ),
  );
  // Network: the bridge (with the root namespace's address), then a namespace and a veth pair per host.
  run(['ip', 'link', 'add', s.bridge, 'type', 'bridge']);
  run(['ip', 'addr', 'add', `${s.gateway}/24`, 'dev', s.bridge]);
  run(['ip', 'link', 'set', s.bridge, 'up']);
  for (const h of s.hosts) {
    run(['ip', 'netns', 'add', h.ns]);
    run(['ip', 'link', 'add', h.veth, 'type', 'veth', 'peer', 'name', h.peer]);
    run(['ip', 'link', 'set', h.peer, 'master', s.bridge]);
    run(['ip', 'link', 'set', h.peer, 'up']);
    run(['ip', 'link', 'set', h.veth, 'netns', h.ns]);
    run(['ip', '-n', h.ns, 'link', 'set', 'lo', 'up']);
    run(['ip', '-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', h.veth]);
    run(['ip', '-n', h.ns, 'link', 'set', h.veth, 'up']);
  }
  // etcd in the root namespace, on the bridge.
  const peerUrl = `http://${s.gateway}:2380`;
  // Detached (not the test helper's child process), so it outlives mesh:up; same command line as test/helpers/etcd.ts.
  launch(s, 'etcd', ['etcd', ...etcdArgs(`mesh-${s.id}`, path.join(s.dir, 'etcd'), s.etcdUrl, peerUrl, 'warn')]);
  // The fault relay in front of one host's inbound listener (what that host registers).
  const relayHost = s.hosts[s.relay.host - 1];
  if (relayHost !== undefined) launch(s, 'relay', [process.execPath, SELF, 'relay', s.relay.listen, s.relay.target, s.relay.control, s.dir]);
  await until(() => httpOk(`${s.etcdUrl}/health`), 'etcd', 20_000, s);
  for (const h of s.hosts) {
    writeFileSync(h.config, hostConfig(h, s, certs, leaseTtl));
    launch(s, `app${h.i}`, ['ip', 'netns', 'exec', h.ns, process.execPath, '-e', APP_JS, `app-${h.i}`, s.dir]);
    launch(s, `sidecar${h.i}`, ['ip', 'netns', 'exec', h.ns, process.execPath, BIN, 'run', '-c', h.config]);
  }
  for (const h of s.hosts) await until(() => httpOk(`${h.admin}/ready`), `host ${h.i}'s sidecar /ready`, 30_000, s);
  const want = s.hosts.filter((h) => h.service === 'backend').map((h) => h.registered).sort();
  await until(async () => JSON.stringify((await backendEndpoints(s).catch(() => [])).map((e) => e.address).sort()) === JSON.stringify(want), 'host 1 to discover every backend through etcd', 30_000, s);
  const registered = async (h: MeshHost): Promise<boolean> => {
    const res = await fetch(`${h.admin}/clusters`, { signal: AbortSignal.timeout(2000) });
    return ((await res.json()) as { registration?: { state?: string } }).registration?.state === 'registered';
  };
  await until(async () => (await Promise.all(s.hosts.map((h) => registered(h).catch(() => false)))).every(Boolean), 'every host to be registered', 30_000, s);
}

/** True when /proc says pid runs a command line that mentions `mark` (our state dir or mesh id): never kill a stranger. */
function ours(pid: number, mark: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(mark);
  } catch {
    return false;
  }
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');

/**
 * Removes the mesh recorded in `dir`: its processes (SIGKILL, only those whose command line names the dir or a host
 * config in it), anything else still running in its namespaces, the namespaces, the bridge and the directory.
 * Returns what it removed, for the person running mesh:down. Safe to call twice.
 */
export async function meshDown(dir: string): Promise<string[]> {
  const s = readState(dir);
  const removed: string[] = [];
  if (s === undefined) {
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    return removed;
  }
  const victims = new Set<number>();
  for (const p of s.processes) if (ours(p.pid, s.dir)) victims.add(p.pid);
  for (const h of s.hosts) {
    // Whatever runs inside our namespaces is ours too (a person may have started a client there).
    let pids = '';
    try {
      pids = run(['ip', 'netns', 'pids', h.ns]);
    } catch {
      /* no such namespace */
    }
    for (const p of pids.split('\n').filter((x) => x !== '')) victims.add(Number(p));
  }
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
      removed.push(`process ${pid} (${s.processes.find((p) => p.pid === pid)?.what ?? 'in a mesh namespace'})`);
    } catch {
      /* already gone */
    }
  }
  const end = Date.now() + 5000;
  while ([...victims].some(alive) && Date.now() < end) await sleep(50);
  for (const h of s.hosts) {
    if (attempt(['ip', 'netns', 'del', h.ns])) removed.push(`namespace ${h.ns}`);
    if (attempt(['ip', 'link', 'del', h.peer])) removed.push(`link ${h.peer}`);
  }
  if (attempt(['ip', 'link', 'del', s.bridge])) removed.push(`bridge ${s.bridge}`);
  rmSync(s.dir, { recursive: true, force: true });
  removed.push(`directory ${s.dir}`);
  return removed;
}

/** What is left of a mesh id on this machine (namespaces and links named after it): empty when it is all gone. */
export function leftovers(id: string): string[] {
  const netns = run(['ip', 'netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.endsWith(`-${id}`));
  const links = run(['ip', '-o', 'link', 'show']).split('\n').map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1]).filter((n): n is string => n !== undefined && n.endsWith(`-${id}`));
  return [...netns.map((n) => `namespace ${n}`), ...links.map((n) => `link ${n}`)];
}

// Sends n requests with `concurrency` workers to host 1's outbound listener; prints { ok, errors, by, statuses }.
const CLIENT_JS = `(async () => { const [n, c, path] = [Number(process.argv[1]), Number(process.argv[2]), process.argv[3]]; const by = {}; const statuses = {}; let ok = 0, errors = 0, next = 0;
  const one = async () => { try { const r = await fetch('http://127.0.0.1:15001' + path, { signal: AbortSignal.timeout(5000) }); const t = await r.text();
    statuses[r.status] = (statuses[r.status] || 0) + 1; if (r.status === 200) { ok++; by[t] = (by[t] || 0) + 1; } else errors++; } catch (e) { errors++; statuses[e.name] = (statuses[e.name] || 0) + 1; } };
  await Promise.all(Array.from({ length: c }, async () => { while (next++ < n) await one(); }));
  console.log(JSON.stringify({ ok, errors, by, statuses })); })();`;

export interface ClientResult {
  ok: number;
  errors: number;
  /** Answers per app name ("app-2"). */
  by: Record<string, number>;
  statuses: Record<string, number>;
}

/** Runs the client inside host 1's namespace (an app calling its own sidecar), without blocking this event loop. */
export function meshClient(s: MeshState, n: number, concurrency = 1, urlPath = '/'): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', s.hosts[0]!.ns, process.execPath, '-e', CLIENT_JS, String(n), String(concurrency), urlPath], { encoding: 'utf8', timeout: 120_000 }, (err, out, stderr) =>
      err ? reject(new Error(`mesh client: ${err.message} ${stderr}`)) : resolve(JSON.parse(out) as ClientResult),
    );
  });
}

/** Changes the relay's latency (ms per chunk, each way), loss (0..1, a lost chunk resets the connection) or down. */
export async function setRelay(s: MeshState, settings: { latencyMs?: number; loss?: number; down?: boolean }): Promise<{ faults: number }> {
  const q = new URLSearchParams();
  if (settings.latencyMs !== undefined) q.set('latency', String(settings.latencyMs));
  if (settings.loss !== undefined) q.set('loss', String(settings.loss));
  if (settings.down !== undefined) q.set('down', settings.down ? '1' : '0');
  const res = await fetch(`${s.relay.control}/?${q}`, { signal: AbortSignal.timeout(2000) });
  return (await res.json()) as { faults: number };
}

/** The relay process: test/helpers/fault-relay.ts behind a tiny HTTP control (GET /?latency=&loss=&down=). */
async function relayMain(listen: string, target: string, control: string): Promise<void> {
  const split = (hp: string): { host: string; port: number } => ({ host: hp.slice(0, hp.lastIndexOf(':')), port: Number(hp.slice(hp.lastIndexOf(':') + 1)) });
  const relay = await startFaultRelay(split(target), {}, split(listen));
  const c = new URL(control);
  createServer((req, res) => {
    const q = new URL(req.url ?? '/', control).searchParams;
    const latency = q.get('latency');
    const loss = q.get('loss');
    const down = q.get('down');
    if (latency !== null) relay.settings.latencyMs = Math.max(0, Number(latency) || 0);
    if (loss !== null) relay.settings.loss = Math.min(1, Math.max(0, Number(loss) || 0));
    if (down !== null) relay.settings.down = down === '1' || down === 'true';
    res.setHeader('content-type', 'application/json');
    res.end(`${JSON.stringify({ target, ...relay.settings, faults: relay.faults })}\n`);
  }).listen(Number(c.port), c.hostname);
}

if (process.argv[1] === SELF && process.argv[2] === 'relay') {
  const [listen, target, control] = process.argv.slice(3);
  void relayMain(listen!, target!, control!);
}
