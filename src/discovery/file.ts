// The file source (as Envoy's filesystem EDS): a watched YAML/JSON file of endpoints, read again whenever it changes.
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { endpoint } from '../config/schema.js';
import { toDiscovered, type DiscoveredEndpoint, type DiscoverySink, type DiscoverySource } from './source.js';

/** `endpoints: [...]` (or a bare list), entries as in a cluster's `endpoints`. */
const fileSchema = z.union([z.strictObject({ endpoints: z.array(endpoint) }), z.array(endpoint)]);

/** Rename-and-write bursts settle within this; one read follows. */
const SETTLE_MS = 20;

/** Parses an endpoint file's text; throws an Error naming the file and what is wrong. */
export function parseEndpointFile(file: string, text: string): DiscoveredEndpoint[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new Error(`${file}: not YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  const r = fileSchema.safeParse(doc);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new Error(`${file}: ${issue.path.join('.') || '(top)'}: ${issue.message}`);
  }
  const list = Array.isArray(r.data) ? r.data : r.data.endpoints;
  // An empty file is far more often a half-done publish than a wish to black-hole the cluster.
  if (list.length === 0) throw new Error(`${file}: no endpoints (an empty set is not applied)`);
  return list.map(toDiscovered);
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
