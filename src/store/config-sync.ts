// The config agent (config_sync): chosen etcd keys kept as files in a directory shared with the app. Each write is
// atomic (a temp file in the same directory, chmod, rename), a deleted key removes its file, and after a batch of
// changes the app is told: a signal to the process in a pid file, and/or an HTTP call.
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { SidecarMetrics } from '../observability/catalogue.js';
import { EtcdKeys } from './etcd-keys.js';

type SyncConfig = NonNullable<Config['config_sync']>;

let tempN = 0;

/** Writes `data` to `file` atomically with `mode`: readers see the old content or the new, never a part. */
export function writeAtomic(file: string, data: string, mode: number): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${tempN++}`);
  try {
    fs.writeFileSync(temp, data, { mode });
    fs.chmodSync(temp, mode); // the umask may have narrowed it
    fs.renameSync(temp, file);
  } catch (err) {
    fs.rmSync(temp, { force: true });
    throw err;
  }
}

export class ConfigSync {
  readonly #config: SyncConfig;
  readonly #logger: Logger;
  readonly #metrics: SidecarMetrics | undefined;
  readonly #keys: EtcdKeys;
  readonly #byKey: Map<string, { path: string; mode: number }>;
  /** Writes done (tests). */
  writes = 0;

  constructor(config: SyncConfig, logger: Logger, metrics?: SidecarMetrics) {
    this.#config = config;
    this.#logger = logger;
    this.#metrics = metrics;
    this.#byKey = new Map(config.files.map((f) => [f.key, { path: path.resolve(config.directory, f.path), mode: parseInt(f.mode, 8) }]));
    this.#keys = new EtcdKeys(config.endpoints, [...this.#byKey.keys()], config.timeout, {
      changed: (values, revision) => void this.#write(values, revision),
      unavailable: (reason) => this.#logger.warn({ reason }, 'config_sync: store unavailable; the files stay as they are'),
    });
  }

  start(): void {
    fs.mkdirSync(this.#config.directory, { recursive: true });
    this.#keys.start();
  }

  stop(): void {
    this.#keys.stop();
  }

  async #write(values: ReadonlyMap<string, string | null>, revision: string): Promise<void> {
    let changed = 0;
    for (const [key, value] of values) {
      const target = this.#byKey.get(key);
      if (target === undefined) continue;
      try {
        if (value === null) {
          if (fs.existsSync(target.path)) {
            fs.rmSync(target.path, { force: true });
            changed++;
            this.#metrics?.configSyncWrites.get({ result: 'removed' }).inc();
          }
        } else {
          let current: string | undefined;
          try {
            current = fs.readFileSync(target.path, 'utf8');
          } catch {
            current = undefined;
          }
          if (current === value && (fs.statSync(target.path).mode & 0o777) === target.mode) continue;
          writeAtomic(target.path, value, target.mode);
          changed++;
          this.#metrics?.configSyncWrites.get({ result: 'written' }).inc();
        }
      } catch (err) {
        this.#metrics?.configSyncWrites.get({ result: 'error' }).inc();
        this.#logger.error({ key, file: target.path, err: (err as Error).message }, 'config_sync: cannot write the file');
      }
    }
    if (changed === 0) return;
    this.writes += changed;
    this.#logger.info({ files: changed, revision }, 'config_sync: files updated');
    await this.#notify();
  }

  async #notify(): Promise<void> {
    const n = this.#config.notify;
    if (n?.signal !== undefined) {
      try {
        const pid = Number(fs.readFileSync(n.signal.pid_file, 'utf8').trim());
        if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no process id in ${n.signal.pid_file}`);
        process.kill(pid, n.signal.signal);
      } catch (err) {
        this.#logger.warn({ err: (err as Error).message }, 'config_sync: could not signal the app');
      }
    }
    if (n?.http !== undefined) {
      try {
        const res = await fetch(n.http.url, { method: n.http.method, signal: AbortSignal.timeout(this.#config.timeout) });
        await res.body?.cancel();
        if (!res.ok) throw new Error(`${n.http.url} answered ${res.status}`);
      } catch (err) {
        this.#logger.warn({ err: (err as Error).message }, 'config_sync: the app\'s change URL failed');
      }
    }
  }
}
