// Test helper: a real etcd v3 server (Debian etcd-server) on random client and peer ports with a temporary data dir.
// It can be stopped and started again on the same ports and data (a source's "unavailable, then back" case).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireCommand } from './system.js';
import { freePort } from './upstream.js';

export interface TestEtcd {
  /** Client URL, e.g. http://127.0.0.1:43121. */
  readonly url: string;
  /** Kills the server (SIGKILL: a crash, not a goodbye); resolves once it exited. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data dir; resolves once it serves. */
  start(): Promise<void>;
  /** Stops it and removes the data dir. */
  dispose(): Promise<void>;
}

/** A one-member etcd cluster's command line (also scripts/netns-mesh.ts, which runs etcd on a bridge address). */
export function etcdArgs(name: string, dataDir: string, clientUrl: string, peerUrl: string, logLevel = 'error'): string[] {
  return [
    '--name', name, '--data-dir', dataDir,
    '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `${name}=${peerUrl}`, '--initial-cluster-state', 'new',
    '--log-level', logLevel, '--logger', 'zap',
  ];
}

export async function startEtcd(): Promise<TestEtcd> {
  requireCommand('etcd', 'etcd-server');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sidecar-etcd-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = etcdArgs('test', path.join(dir, 'data'), url, peer);
  let child: ChildProcess | undefined;
  let log = '';

  async function start(): Promise<void> {
    const proc = spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe']});
    child = proc;
    proc.stdout.on('data', (c: Buffer) => (log += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (log += c.toString()));
    const end = Date.now() + 20_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`etcd exited ${proc.exitCode}: ${log.slice(-2000)}`);
      try {
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) });
        if (res.ok && ((await res.json()) as { health?: string }).health === 'true') return;
      } catch {
        // not up yet
      }
      if (Date.now() > end) throw new Error(`etcd did not become healthy: ${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function stop(): Promise<void> {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }

  await start();
  return {
    url,
    stop,
    start,
    async dispose() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
