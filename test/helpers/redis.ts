// Test helper: a real Redis (Debian redis-server) on a random port, no persistence. It can be killed and started
// again on the same port (the "store unreachable, then back" case).
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { requireCommand } from './system.js';
import { freePort } from './upstream.js';

export interface TestRedis {
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  /** SIGKILL: a crash, not a goodbye; resolves once it exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves once it answers PING. */
  start(): Promise<void>;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(500, () => s.destroy());
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      resolve(d.toString().startsWith('+PONG'));
      s.destroy();
    });
  });
}

export async function startRedis(): Promise<TestRedis> {
  requireCommand('redis-server', 'redis-server');
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = '';
  async function start(): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout.on('data', (c: Buffer) => (log += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (log += c.toString()));
    const end = Date.now() + 10_000;
    while (!(await ping(port))) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited ${proc.exitCode}: ${log.slice(-2000)}`);
      if (Date.now() > end) throw new Error(`redis-server did not answer PING: ${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async function stop(): Promise<void> {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await gone;
  }
  await start();
  return { port, url: `redis://127.0.0.1:${port}`, stop, start };
}
