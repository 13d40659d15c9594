// Test helper: podman with its own storage in a cache dir, and a Node 20 base image made offline (no registry is
// reachable here): a Debian minbase root from the host's apt mirror (debootstrap) plus this very Node binary and npm.
// The cache keeps the base image (and podman's build layers) between runs: only the first run pays for debootstrap.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireCommand } from './system.js';

export interface Podman {
  /** Runs podman with this cache's storage; resolves with stdout, rejects with the exit code and stderr. */
  run(args: readonly string[], opts?: { timeoutMs?: number; allowFail?: boolean }): Promise<PodmanResult>;
  /** Where the storage, the containers.conf and the base image's build files live. */
  readonly cacheDir: string;
}

export interface PodmanResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Overridable so CI can keep the cache on a persistent disk. */
export const CONTAINER_CACHE = process.env.SIDECAR_CONTAINER_CACHE ?? path.join(os.tmpdir(), 'sidecar-container-cache');

function exec(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<PodmanResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** The hard limit of a resource from /proc/self/limits (podman's default ulimits exceed what an unprivileged sandbox allows). */
function hardLimit(name: string): number {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
  const hard = line?.slice(name.length).trim().split(/\s+/)[1];
  return hard === undefined || hard === 'unlimited' ? Infinity : Number(hard);
}

/**
 * podman set up for machines without systemd and with cgroup v1 plus an empty v2 hierarchy ("hybrid", which crun
 * refuses: runc is used), without CAP_SYS_RESOURCE (ulimits no higher than ours), and with overlay storage when
 * the kernel allows it (vfs otherwise).
 */
export async function requirePodman(): Promise<Podman> {
  requireCommand('podman', 'podman');
  requireCommand('runc', 'runc');
  const cacheDir = CONTAINER_CACHE;
  fs.mkdirSync(cacheDir, { recursive: true });
  const limit = (name: string): number => Math.min(16_384, hardLimit(name));
  const conf = path.join(cacheDir, 'containers.conf');
  fs.writeFileSync(conf, [
    '[containers]',
    `default_ulimits = ["nofile=${limit('Max open files')}:${limit('Max open files')}", "nproc=${limit('Max processes')}:${limit('Max processes')}"]`,
    '[engine]',
    'runtime = "runc"',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    '',
  ].join('\n'));
  const env = { ...process.env, CONTAINERS_CONF: conf };
  const storage = (driver: string): string[] => ['--storage-driver', driver, '--root', path.join(cacheDir, `storage-${driver}`), '--runroot', path.join(cacheDir, `run-${driver}`)];
  let global = storage('overlay');
  if ((await exec('podman', [...global, 'info'], env, 60_000)).code !== 0) global = storage('vfs');
  const run: Podman['run'] = async (args, opts = {}) => {
    const r = await exec('podman', [...global, ...args], env, opts.timeoutMs ?? 60_000);
    if (r.code !== 0 && !opts.allowFail) throw new Error(`podman ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-3000)}`);
    return r;
  };
  return { run, cacheDir };
}

/** The host's Debian release and the mirror apt uses for it (deb822 .sources or one-line sources.list). */
export function aptMirror(): { suite: string; mirror: string } {
  const osRelease = fs.readFileSync('/etc/os-release', 'utf8');
  const suite = /^VERSION_CODENAME=(\S+)$/m.exec(osRelease)?.[1];
  if (!suite) throw new Error('/etc/os-release has no VERSION_CODENAME: debootstrap needs a Debian (or derived) host');
  const dir = '/etc/apt/sources.list.d';
  const files = ['/etc/apt/sources.list', ...(fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : [])];
  for (const f of files.filter((f) => fs.existsSync(f))) {
    const text = fs.readFileSync(f, 'utf8');
    for (const stanza of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.split(/\s+/) ?? [];
      if (uri && suites.includes(suite)) return { suite, mirror: uri };
    }
    const line = new RegExp(`^deb\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+${suite}\\s`, 'm').exec(text);
    if (line?.[1]) return { suite, mirror: line[1] };
  }
  return { suite, mirror: 'http://deb.debian.org/debian' };
}

/**
 * A local image `localhost/sidecar-test-node:<node version>-<suite>`: Debian minbase (with iptables) plus this
 * process's node binary and npm, the same libc as the host so the binary runs. Built once per cache.
 * The host's extra CA bundle (NODE_EXTRA_CA_CERTS, e.g. a TLS-intercepting egress proxy) goes in too, so `npm ci`
 * in the build trusts what the host's npm trusts; this image is a test fixture, never pushed.
 */
export async function nodeBaseImage(podman: Podman): Promise<{ image: string; builtMs: number }> {
  const { suite, mirror } = aptMirror();
  const image = `localhost/sidecar-test-node:${process.version}-${suite}`;
  if ((await podman.run(['image', 'exists', image], { allowFail: true })).code === 0) return { image, builtMs: 0 };
  requireCommand('debootstrap', 'debootstrap');
  const npmDir = path.resolve(path.dirname(process.execPath), '../lib/node_modules/npm');
  if (!fs.existsSync(path.join(npmDir, 'bin/npm-cli.js'))) throw new Error(`npm not found next to ${process.execPath} (looked in ${npmDir})`);
  const started = Date.now();
  const work = fs.mkdtempSync(path.join(podman.cacheDir, 'base-'));
  const root = path.join(work, 'rootfs');
  try {
    const boot = await exec('debootstrap', ['--variant=minbase', '--include=iptables,libstdc++6', suite, root, mirror], process.env, 600_000);
    if (boot.code !== 0) throw new Error(`debootstrap ${suite} ${mirror} exited ${boot.code}: ${(boot.stdout + boot.stderr).slice(-3000)}`);
    // Not needed at run time: package caches and lists, docs, man pages, translations.
    for (const d of ['var/cache/apt/archives', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/locale']) {
      const dir = path.join(root, d);
      if (!fs.existsSync(dir)) continue;
      for (const e of fs.readdirSync(dir)) if (e !== 'partial' && e !== 'lock') fs.rmSync(path.join(dir, e), { recursive: true, force: true });
    }
    fs.copyFileSync(process.execPath, path.join(root, 'usr/bin/node'));
    fs.chmodSync(path.join(root, 'usr/bin/node'), 0o755);
    fs.cpSync(npmDir, path.join(root, 'usr/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true });
    fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr/bin/npm'));
    fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(root, 'usr/bin/npx'));
    const changes = ['--change', 'CMD ["node"]'];
    const ca = process.env.NODE_EXTRA_CA_CERTS;
    if (ca && fs.existsSync(ca)) {
      fs.mkdirSync(path.join(root, 'usr/local/share/sidecar-test'), { recursive: true });
      fs.copyFileSync(ca, path.join(root, 'usr/local/share/sidecar-test/extra-ca.pem'));
      changes.push('--change', 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/sidecar-test/extra-ca.pem');
    }
    const tar = path.join(work, 'rootfs.tar');
    const packed = await exec('tar', ['-C', root, '-cf', tar, '.'], process.env, 120_000);
    if (packed.code !== 0) throw new Error(`tar exited ${packed.code}: ${packed.stderr}`);
    await podman.run(['import', ...changes, tar, image], { timeoutMs: 120_000 });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return { image, builtMs: Date.now() - started };
}
