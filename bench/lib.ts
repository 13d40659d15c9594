// Shared benchmark plumbing: CPU pinning, pinned child processes, tool detection and waiting for a port to open.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import type { Writable } from 'node:stream';

export const PROXY_CPU = '0';
export const LOAD_CPU = os.cpus().length > 1 ? '1' : '0';

export function have(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const HAVE_TASKSET = have('taskset');

/** The command line that runs `cmd args` pinned to one CPU (unpinned where taskset is missing). */
export const pin = (cpu: string, cmd: string, args: string[]): [string, string[]] =>
  HAVE_TASKSET ? ['taskset', ['-c', cpu, cmd, ...args]] : [cmd, args];

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`port ${port} did not open`);
}

/** Where a started process's stdout goes: nowhere, or a pipe another process reads. */
export type StdioOut = 'ignore' | Writable;

/** Every process startPinned started: killed when the bench exits, however it exits. */
export const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
process.on('SIGINT', () => process.exit(130));

/** Runs `node args` pinned to `cpu`, its stderr shown, killed when the bench exits. */
export function startPinned(cpu: string, args: string[], env: NodeJS.ProcessEnv = {}, stdout: StdioOut = 'ignore'): ChildProcess {
  const [cmd, argv] = pin(cpu, process.execPath, args);
  const child = spawn(cmd, argv, { stdio: ['ignore', stdout, 'inherit'], env: { ...process.env, ...env } });
  children.push(child);
  return child;
}
