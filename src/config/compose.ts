// config_source: the store's YAML document laid over the bootstrap file. The store's text comes first, verbatim, so
// a validation error in it keeps the line it has in the key; the file's remaining top-level keys follow.
import { isMap, parseDocument, stringify } from 'yaml';
import { ConfigError, type ConfigIssue } from './errors.js';

/** Top-level keys only the bootstrap file may set (the store cannot move the admin server or itself). */
export const FILE_ONLY_KEYS: readonly string[] = ['admin', 'config_source', 'config_sync', 'register'];

export interface Composed {
  readonly text: string;
  /** Lines 1..storeLines of `text` are the store document's own. */
  readonly storeLines: number;
}

/** Composes the two; throws ConfigError (naming `label`, the key) when the store document is not a YAML map or sets a file-only key. */
export function composeConfig(fileText: string, storeText: string, label: string): Composed {
  const store = parseDocument(storeText);
  const issue = (line: number, path: string, message: string): ConfigIssue => ({ file: label, line, col: 1, path, message });
  if (store.errors.length > 0) {
    const e = store.errors[0]!;
    throw new ConfigError([issue(e.linePos?.[0]?.line ?? 1, '', e.message.split('\n')[0]!)]);
  }
  const storeValue: unknown = store.toJS();
  if (storeValue === null || storeValue === undefined) throw new ConfigError([issue(1, '', 'the key is empty (a config document was expected)')]);
  if (!isMap(store.contents)) throw new ConfigError([issue(1, '', 'expected a YAML map of config keys (listeners, clusters, ...)')]);
  const lines = storeText.split('\n');
  const lineOf = (key: string): number => Math.max(1, lines.findIndex((l) => l.startsWith(`${key}:`)) + 1);
  const storeKeys = Object.keys(storeValue as Record<string, unknown>);
  const bad = storeKeys.filter((k) => FILE_ONLY_KEYS.includes(k));
  if (bad.length > 0) throw new ConfigError(bad.map((k) => issue(lineOf(k), k, `${k} can only be set in the bootstrap file, not in the store`)));
  const file = (parseDocument(fileText).toJS() ?? {}) as Record<string, unknown>;
  const rest = Object.fromEntries(Object.entries(file).filter(([k]) => !storeKeys.includes(k)));
  const body = storeText.endsWith('\n') ? storeText : `${storeText}\n`;
  const storeLines = body.split('\n').length - 1;
  return { text: Object.keys(rest).length === 0 ? body : `${body}${stringify(rest)}`, storeLines };
}

/** Issues past the store's lines belong to the bootstrap file: relabel them (their lines are of the composed text). */
export function relabel(issues: readonly ConfigIssue[], storeLines: number, fileLabel: string): ConfigIssue[] {
  return issues.map((i) => (i.line > storeLines ? { ...i, file: `${fileLabel} (as laid under the store document)`, line: i.line - storeLines } : i));
}
