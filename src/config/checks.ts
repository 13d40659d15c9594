// Checks `validate` (and `run --check`) make beyond the schema: a file with nothing to serve is an error there.
import type { ConfigIssue } from './errors.js';
import type { Config } from './schema.js';

/**
 * An empty file, or one without listeners, is valid to the schema (every key has a default) but serves nothing except
 * the admin port: almost always a wrong or truncated file. `validate` calls it an error, as reload refuses such a file.
 */
export function nothingToServeIssues(text: string, config: Config, file: string): ConfigIssue[] {
  if (config.listeners.length > 0) return [];
  const blank = text.split(/\r?\n/).every((l) => /^\s*(#.*)?$/.test(l) || /^(---|\.\.\.)\s*$/.test(l));
  if (blank) return [{ file, line: 1, col: 1, path: '', message: 'the file is empty: a config needs at least one listener' }];
  const lines = text.split(/\r?\n/);
  const at = lines.findIndex((l) => /^listeners\s*:/.test(l));
  return [
    {
      file,
      line: at < 0 ? 1 : at + 1,
      col: 1,
      path: at < 0 ? '' : 'listeners',
      message: 'no listeners: the sidecar would serve nothing but the admin port; add at least one listener',
    },
  ];
}
