// Finds routes that can never match because an earlier route takes every request they would (first match wins).
// Conservative on purpose: it only claims shadowing it can prove from the config text, never guesses about regexes.
import { isDeepStrictEqual } from 'node:util';
import type { RouteMatchConfig, ValueMatchConfig } from './schema.js';

export interface Shadowing {
  /** Index of the route that can never match. */
  index: number;
  /** Index of the earlier route that takes its requests. */
  by: number;
}

/** Every route that an earlier route shadows, each once, with the first route that shadows it. */
export function shadowedRoutes(matches: readonly RouteMatchConfig[]): Shadowing[] {
  const out: Shadowing[] = [];
  for (let b = 1; b < matches.length; b++) {
    for (let a = 0; a < b; a++) {
      if (covers(matches[a]!, matches[b]!)) {
        out.push({ index: b, by: a });
        break;
      }
    }
  }
  return out;
}

/** True when every request that `later` matches is also matched by `earlier`. */
export function covers(earlier: RouteMatchConfig, later: RouteMatchConfig): boolean {
  return (
    pathCovers(earlier, later) &&
    hostsCover(earlier.hosts, later.hosts) &&
    listCovers(earlier.methods, later.methods) &&
    conditionsCover(earlier.headers, later.headers, true) &&
    conditionsCover(earlier.query, later.query, false)
  );
}

function pathCovers(a: RouteMatchConfig, b: RouteMatchConfig): boolean {
  if (a.exact !== undefined) return b.exact === a.exact;
  if (a.regex !== undefined) return b.regex === a.regex;
  if (a.prefix === undefined || a.prefix === '/') return true;
  const p = a.prefix;
  if (b.prefix !== undefined) return b.prefix.startsWith(p);
  if (b.exact !== undefined) return b.exact.startsWith(p);
  return false;
}

function hostsCover(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined) return true;
  if (b === undefined) return a.includes('*');
  const patterns = a.map((h) => h.toLowerCase());
  return b.every((raw) => {
    const host = raw.toLowerCase();
    return patterns.some((p) => p === '*' || p === host || (p.startsWith('*.') && host.length > p.length - 1 && host.endsWith(p.slice(1))));
  });
}

/** An earlier list (methods) covers a later one when it is absent, or holds every entry of the later one. */
function listCovers(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === undefined) return true;
  return b !== undefined && b.every((m) => a.includes(m));
}

/** Every condition of the earlier route must also be a condition of the later one (so the later is narrower). */
function conditionsCover(a: readonly ValueMatchConfig[] | undefined, b: readonly ValueMatchConfig[] | undefined, caseless: boolean): boolean {
  if (a === undefined || a.length === 0) return true;
  const norm = (m: ValueMatchConfig): ValueMatchConfig => (caseless ? { ...m, name: m.name.toLowerCase() } : m);
  const later = (b ?? []).map(norm);
  return a.every((m) => later.some((n) => isDeepStrictEqual(norm(m), n)));
}
