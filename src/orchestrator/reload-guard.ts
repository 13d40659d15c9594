// What a reload reads and refuses: the file once it has stopped changing, and configs that would take the data plane down by accident.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Config } from '../config/schema.js';

/** Two reads this far apart must agree before a reload parses the file: an in-place save is truncate, then write(s). */
export const SETTLE_MS = 200;
/** A file still changing after this long is read as it is then (the parse and the guards below still apply). */
export const MAX_SETTLE_MS = 5000;

export interface FileRead {
  readonly text: string;
  /** sha1 of the content: the watcher skips a reload when the content is what it last saw. */
  readonly hash: string;
  readonly size: number;
  readonly mtimeMs: number;
}

export const hashText = (text: string | Buffer): string => createHash('sha1').update(text).digest('hex');

async function readOnce(file: string): Promise<FileRead> {
  const fd = await open(file, 'r');
  try {
    const st = await fd.stat();
    const buf = await fd.readFile();
    return { text: buf.toString('utf8'), hash: hashText(buf), size: buf.length, mtimeMs: st.mtimeMs };
  } finally {
    await fd.close();
  }
}

const sameRead = (a: FileRead, b: FileRead): boolean => a.hash === b.hash && a.size === b.size && a.mtimeMs === b.mtimeMs;

/**
 * Reads `file` until two reads `settleMs` apart agree on size, mtime and content. A read that fails (the file is
 * missing for a moment while it is replaced) counts as a change; after `maxMs` the last read is returned, or its
 * error thrown.
 */
export async function readStable(
  file: string,
  settleMs = SETTLE_MS,
  maxMs = MAX_SETTLE_MS,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<FileRead> {
  const deadline = Date.now() + maxMs;
  const attempt = (): Promise<FileRead | Error> => readOnce(file).catch((err: Error) => err);
  let previous = await attempt();
  for (;;) {
    await sleep(settleMs);
    const current = await attempt();
    if (!(current instanceof Error) && !(previous instanceof Error) && sameRead(previous, current)) return current;
    if (Date.now() >= deadline) {
      if (current instanceof Error) throw current;
      return current;
    }
    previous = current;
  }
}

export type Refusal = 'empty_file' | 'no_listeners';

/** An empty file (only whitespace) is refused outright: it cannot say that it means it. */
export const isEmptyText = (text: string): boolean => text.trim() === '';

/**
 * Why a parsed config must not be applied on reload, if it must not: no listeners while some are serving, unless the
 * new config says `allow_no_listeners: true`.
 */
export function refusal(next: Config, listenersServing: number): Refusal | undefined {
  if (next.listeners.length === 0 && listenersServing > 0 && !next.allow_no_listeners) return 'no_listeners';
  return undefined;
}

/** /ready: undefined when every configured listener is bound; otherwise why the data plane is not serving. */
export function readiness(stopping: boolean, configured: readonly string[], bound: (name: string) => boolean): string | undefined {
  if (stopping) return 'draining';
  if (configured.length === 0) return 'no listeners configured';
  const unbound = configured.filter((name) => !bound(name));
  if (unbound.length > 0) return `listener${unbound.length > 1 ? 's' : ''} not bound: ${unbound.join(', ')}`;
  return undefined;
}
