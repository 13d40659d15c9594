// Test helper: runs the real `sidecar` CLI as a child process on a temp config, and finds its bound ports.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = path.join(ROOT, 'bin/sidecar.js');

export interface RunningSidecar {
  readonly proc: ChildProcess;
  readonly configPath: string;
  /** Bound port of each listener, by name (config may use port 0). */
  readonly ports: Record<string, number>;
  readonly adminPort: number;
  /** Everything written to stdout (access log) so far. */
  stdout(): string;
  /** Everything written to stderr (operational log) so far. */
  stderr(): string;
  /** Parsed access-log lines so far. */
  accessLog(): Array<Record<string, unknown>>;
  /** Waits until the access log has at least n lines (it is flushed every 100 ms). */
  waitForAccessLog(n: number, timeoutMs?: number): Promise<Array<Record<string, unknown>>>;
  /** Rewrites the config file (a reload happens on SIGHUP or file change). */
  writeConfig(yaml: string): void;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves when the process exits. */
  exited: Promise<number | null>;
}

/** Tests stop sidecars all the time: no drain_delay (default 5s) unless the test sets one. Appended, so error line numbers stay. */
const withTestDefaults = (yaml: string): string => (/^drain_delay:/m.test(yaml) ? yaml : `${yaml}${yaml.endsWith('\n') ? '' : '\n'}drain_delay: 0s\n`);

/**
 * Starts `sidecar run -c <tmp>/sidecar.yaml`. Use port 0 for listeners and admin to avoid clashes; the real ports are
 * read from the startup log line; `nodeArgs` go to node before the script (e.g. `--inspect=127.0.0.1:0`). The config gets `admin.port: 0` unless it sets an admin block itself, and `drain_delay: 0s` unless it sets one.
 */
export async function startSidecar(yaml: string, opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; nodeArgs?: readonly string[] } = {}): Promise<RunningSidecar> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-test-'));
  const configPath = path.join(dir, 'sidecar.yaml');
  const text = withTestDefaults(/^admin:/m.test(yaml) ? yaml : `admin: { port: 0 }\n${yaml}`);
  writeFileSync(configPath, text);
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), BIN, 'run', '-c', configPath], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));

  const started = await new Promise<{ listeners: string[]; admin: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sidecar did not start in time:\n${err}`)), opts.timeoutMs ?? 15_000);
    const check = (): void => {
      for (const line of err.split('\n')) {
        if (!line.includes('"sidecar started"')) continue;
        clearTimeout(timer);
        proc.stderr!.off('data', check);
        resolve(JSON.parse(line) as { listeners: string[]; admin: string });
        return;
      }
    };
    proc.stderr!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`sidecar exited with ${code} before starting:\n${err}`));
    });
  });
  const ports: Record<string, number> = {};
  for (const l of started.listeners) {
    const m = /^(\S+) \S+ https?:\/\/.*:(\d+)$/.exec(l);
    if (m) ports[m[1]!] = Number(m[2]);
  }
  const adminPort = Number(/:(\d+)$/.exec(started.admin)?.[1] ?? 0);

  // Complete lines only: the log writer's chunks reach the pipe in pieces, so the text may end mid-line.
  const accessLog = (): Array<Record<string, unknown>> =>
    out
      .slice(0, out.lastIndexOf('\n') + 1)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  return {
    proc,
    configPath,
    ports,
    adminPort,
    stdout: () => out,
    stderr: () => err,
    accessLog,
    async waitForAccessLog(n, timeoutMs = 5000) {
      const end = Date.now() + timeoutMs;
      while (accessLog().length < n) {
        if (Date.now() > end) throw new Error(`expected ${n} access log lines, have ${accessLog().length}:\n${out}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      return accessLog();
    },
    writeConfig(y: string) {
      writeFileSync(configPath, withTestDefaults(/^admin:/m.test(y) ? y : `admin: { port: ${adminPort} }\n${y}`));
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    exited,
  };
}

/** Resident memory of a process in MiB (Linux). */
export async function rssMiB(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}
