// Parses and validates config in a worker thread. Two reasons: a reload never stalls the event loop that carries
// requests, and the schema and YAML libraries (about 10 MiB of RSS) never load into the long-lived main isolate.
import { Worker } from 'node:worker_threads';
import type { ConfigIssue, LoadedConfig } from './load.js';
import type { Config } from './schema.js';

type Reply = { ok: true; loaded: LoadedConfig } | { ok: false; issues: ConfigIssue[] | undefined; message: string };

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.loader).then((m) => {
  try {
    const loaded = typeof workerData.text === 'string'
      ? m.loadConfigText(workerData.text, workerData.file, workerData.env)
      : workerData.file ? m.loadConfigFile(workerData.file, workerData.env) : m.loadDefaultConfig(workerData.env);
    parentPort.postMessage({ ok: true, loaded });
  } catch (e) {
    parentPort.postMessage({ ok: false, issues: e && e.issues, message: String(e && e.message || e) });
  }
});
`;

/**
 * Loads a config file (or the embedded default) off the main thread; rejects with ConfigError when invalid. With
 * `text`, that text is parsed as the content of `file` instead of reading the file again.
 */
export async function loadConfigOffThread(file: string | undefined, env: NodeJS.ProcessEnv = process.env, text?: string): Promise<LoadedConfig> {
  const loader = new URL('./load.js', import.meta.url).href;
  const reply = await new Promise<Reply>((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { loader, file, text, env: { ...env } } });
    worker.once('message', (m: Reply) => {
      resolve(m);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`config loader exited with code ${code}`));
    });
  });
  if (!reply.ok) {
    const { ConfigError } = await import('./errors.js');
    throw reply.issues ? new ConfigError(reply.issues) : new Error(reply.message);
  }
  return {
    config: deepFreeze(reply.loaded.config),
    source: reply.loaded.source,
    clusterDefaults: deepFreeze(reply.loaded.clusterDefaults),
    warnings: reply.loaded.warnings ?? [],
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export type { Config };
