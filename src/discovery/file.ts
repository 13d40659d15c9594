// The file source (as Envoy's filesystem EDS): a watched YAML/JSON file of endpoints, read again whenever it changes.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { DiscoveredEndpoint, DiscoverySink, DiscoverySource } from './source.js';

/** Same rule as the config schema's host:port (the schema itself, with zod, stays out of the long-lived process). */
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** The yaml package, loaded on first use only (a sidecar without a file source never loads it). */
let yamlParse: ((text: string) => unknown) | undefined;
function parseYaml(text: string): unknown {
  yamlParse ??= (createRequire(import.meta.url)('yaml') as { parse: (text: string) => unknown }).parse;
  return yamlParse(text);
}

/** One entry as in a cluster's `endpoints`: "host:port" or { address, weight } (weight 1..1000, default 1). */
function entry(e: unknown, where: string): DiscoveredEndpoint {
  if (typeof e === 'string') {
    if (!HOST_PORT.test(e)) throw new Error(`${where}: expected host:port, e.g. 127.0.0.1:8080`);
    return { address: e, weight: 1 };
  }
  if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new Error(`${where}: expected "host:port" or { address, weight }`);
  const { address, weight = 1, ...rest } = e as { address?: unknown; weight?: unknown };
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new Error(`${where}: unknown key ${extra[0]}`);
  if (typeof address !== 'string' || !HOST_PORT.test(address)) throw new Error(`${where}.address: expected host:port, e.g. 127.0.0.1:8080`);
  if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > 1000) throw new Error(`${where}.weight: expected an integer 1..1000`);
  return { address, weight };
}

/** Rename-and-write bursts settle within this; one read follows. */
const SETTLE_MS = 20;

/** Parses an endpoint file's text; throws an Error naming the file and what is wrong. */
export function parseEndpointFile(file: string, text: string): DiscoveredEndpoint[] {
  let doc: unknown;
  try {
    doc = parseYaml(text); // JSON is YAML too
  } catch (err) {
    throw new Error(`${file}: not YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  const top = Array.isArray(doc) ? doc : typeof doc === 'object' && doc !== null ? (doc as { endpoints?: unknown }).endpoints : undefined;
  if (!Array.isArray(top)) throw new Error(`${file}: expected \`endpoints: [...]\` or a list of endpoints`);
  const prefix = Array.isArray(doc) ? '' : 'endpoints.';
  const list = top.map((e, i) => entry(e, `${file}: ${prefix}${i}`));
  // An empty file is far more often a half-done publish than a wish to black-hole the cluster.
  if (list.length === 0) throw new Error(`${file}: no endpoints (an empty set is not applied)`);
  return list;
}

/**
 * Watches the file's directory, not the file: an atomic publish (write a temp file, rename it over) replaces the
 * inode, which a watch on the file itself would lose. Unreadable, invalid or empty content keeps the last good set.
 */
export class FileSource implements DiscoverySource {
  readonly name: string;
  readonly #file: string;
  #sink: DiscoverySink | undefined;
  #watcher: fs.FSWatcher | undefined;
  #settle: NodeJS.Timeout | undefined;
  #lastText: string | undefined;
  #failing = false;

  constructor(file: string) {
    this.#file = path.resolve(file);
    this.name = `file:${file}`;
  }

  start(sink: DiscoverySink): void {
    this.#sink = sink;
    const base = path.basename(this.#file);
    try {
      this.#watcher = fs.watch(path.dirname(this.#file), { persistent: false }, (_event, name) => {
        if (name === null || name === base) this.#changed();
      });
      this.#watcher.on('error', (err) => sink.unavailable(`${this.#file}: watch failed: ${err.message}`));
    } catch (err) {
      sink.unavailable(`${this.#file}: cannot watch its directory: ${(err as Error).message}`);
    }
    this.#read();
  }

  stop(): void {
    this.#sink = undefined;
    clearTimeout(this.#settle);
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  #changed(): void {
    clearTimeout(this.#settle);
    this.#settle = setTimeout(() => this.#read(), SETTLE_MS);
    this.#settle.unref();
  }

  #read(): void {
    const sink = this.#sink;
    if (sink === undefined) return;
    let text: string;
    try {
      text = fs.readFileSync(this.#file, 'utf8');
    } catch (err) {
      this.#fail(sink, `${this.#file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return;
    }
    if (text === this.#lastText && !this.#failing) return; // a touch, or the second event of one rename
    let list: DiscoveredEndpoint[];
    try {
      list = parseEndpointFile(this.#file, text);
    } catch (err) {
      this.#fail(sink, (err as Error).message);
      return;
    }
    this.#lastText = text;
    this.#failing = false;
    sink.update(list);
  }

  #fail(sink: DiscoverySink, reason: string): void {
    this.#failing = true;
    sink.unavailable(reason);
  }
}
