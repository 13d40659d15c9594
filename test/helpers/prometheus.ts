// Test helper: a real Prometheus (Debian prometheus) on a random port, with a temp data dir and a generated config
// that scrapes the given targets every second; and its HTTP query API.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireCommand } from './system.js';
import { freePort } from './upstream.js';

export interface ScrapeJob {
  readonly job: string;
  /** host:port */
  readonly targets: readonly string[];
  readonly metricsPath?: string;
}

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: number;
}

export interface TestPrometheus {
  readonly port: number;
  readonly url: string;
  /** An instant query: the vector's samples (a scalar comes back as one sample without labels). Throws on an API error. */
  query(expr: string): Promise<PromSample[]>;
  /** Polls `query` until `ok` holds for its result; throws with the last result (and the log) after `timeoutMs`. */
  waitFor(expr: string, ok: (samples: PromSample[]) => boolean, timeoutMs?: number): Promise<PromSample[]>;
  /** Prometheus's own output so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

interface ApiAnswer {
  status: 'success' | 'error';
  error?: string;
  data?: { resultType: 'vector' | 'scalar' | 'matrix' | 'string'; result: unknown };
}

export async function startPrometheus(jobs: readonly ScrapeJob[]): Promise<TestPrometheus> {
  requireCommand('prometheus', 'prometheus');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-prometheus-'));
  const port = await freePort();
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    ...jobs.flatMap((j) => [
      `  - job_name: ${JSON.stringify(j.job)}`,
      `    metrics_path: ${JSON.stringify(j.metricsPath ?? '/metrics')}`,
      '    static_configs:',
      `      - targets: ${JSON.stringify(j.targets)}`,
    ]),
    '',
  ].join('\n');
  const configFile = path.join(dir, 'prometheus.yml');
  writeFileSync(configFile, config);
  let log = '';
  const child: ChildProcess = spawn(
    'prometheus',
    [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (c: Buffer) => (log += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const end = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited ${child.exitCode}: ${log.slice(-2000)}`);
    }
    const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
    if (ready) break;
    if (Date.now() > end) {
      await stop();
      throw new Error(`prometheus was not ready in 30 s: ${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  const query = async (expr: string): Promise<PromSample[]> => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as ApiAnswer;
    if (body.status !== 'success' || body.data === undefined) throw new Error(`query ${expr}: ${body.error ?? res.status}`);
    const { resultType, result } = body.data;
    if (resultType === 'scalar') return [{ metric: {}, value: Number((result as [number, string])[1]) }];
    if (resultType !== 'vector') throw new Error(`query ${expr}: a ${resultType}, not a vector`);
    return (result as Array<{ metric: Record<string, string>; value: [number, string] }>).map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
  };
  const waitFor = async (expr: string, ok: (s: PromSample[]) => boolean, timeoutMs = 30_000): Promise<PromSample[]> => {
    const until = Date.now() + timeoutMs;
    let last: PromSample[] = [];
    for (;;) {
      last = await query(expr);
      if (ok(last)) return last;
      if (Date.now() > until) throw new Error(`prometheus: ${expr} gave ${JSON.stringify(last)} after ${timeoutMs} ms\n${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  return { port, url, query, waitFor, log: () => log, stop };
}
