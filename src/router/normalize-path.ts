// Path normalization before any matching (routing, filters, rate-limit keys): one canonical form of a request's path,
// so that `/public/..%2Fadmin`, `//admin`, `/admin;x`, `/%2e%2e/admin` or `\admin` cannot reach what a rule for
// `/admin` protects while the upstream reads them as `/admin`. Pure; the upstream receives the normalized path.

/** What a listener does with the path of each request (listeners[].path_normalization). */
export interface PathNormalization {
  /** false: the path is passed as it arrived (only for upstreams that do their own normalization). */
  readonly enabled: boolean;
  /** `//a///b` -> `/a/b`. */
  readonly merge_slashes: boolean;
  /** %2F and %5C: reject (400), keep (as data, never a separator), or decode (then they are separators). */
  readonly encoded_slashes: 'reject' | 'keep' | 'decode';
  /** A raw `\`: reject (400), convert to `/`, or keep. */
  readonly backslashes: 'reject' | 'convert' | 'keep';
  /** `;params` in a segment: strip them (`/admin;x` -> `/admin`, `/..;/` -> `/../`), reject (400), or keep. */
  readonly path_params: 'strip' | 'reject' | 'keep';
  /** keep: case is data (routes are case-sensitive); lower: lowercase the path (for case-insensitive upstreams). */
  readonly case: 'keep' | 'lower';
}

export const DEFAULT_PATH_NORMALIZATION: PathNormalization = {
  enabled: true,
  merge_slashes: true,
  encoded_slashes: 'reject',
  backslashes: 'reject',
  path_params: 'strip',
  case: 'keep',
};

/** A path the listener refuses (400 DPE), with the reason. */
export interface PathRefusal {
  readonly refused: string;
}

const HEX = '0123456789ABCDEF';
const hexVal = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1);
/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
const isUnreserved = (c: number): boolean =>
  (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126;

/** True when the path needs no work: no `%`, `\`, `;`, `//`, dot segment, upper case (when lowering), odd byte. */
function isClean(p: string, lower: boolean): boolean {
  let prev = 0;
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 37 || c === 92 || c === 59 || c === 35) return false;
    if (c === 47 && prev === 47) return false;
    if (c === 46 && prev === 47) return false; // "/." starts a possible dot segment (or a dotfile: the slow path keeps it)
    if (lower && c >= 65 && c <= 90) return false;
    prev = c;
  }
  return true;
}

/**
 * Normalizes an origin-form target's path (the query is kept as sent). Returns the new target, or a refusal for a
 * path that cannot be made safe by this config (a bad or forbidden escape, a byte outside RFC 3986, a fragment).
 */
export function normalizeTarget(target: string, cfg: PathNormalization): string | PathRefusal {
  if (!cfg.enabled) return target;
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const out = normalizePath(path, cfg);
  if (typeof out !== 'string') return out;
  return q < 0 ? out : out + target.slice(q);
}

export function normalizePath(path: string, cfg: PathNormalization): string | PathRefusal {
  const lower = cfg.case === 'lower';
  if (isClean(path, lower)) return path;
  // 1. One pass over the characters: decode %XX of unreserved characters (so %2e%2e is "..": dot segments are
  //    resolved after this), upper-case the hex of the rest, handle encoded and raw slashes and backslashes.
  let s = '';
  for (let i = 0; i < path.length; i++) {
    let c = path.charCodeAt(i);
    if (c === 37) {
      const h = i + 2 < path.length ? hexVal(path.charCodeAt(i + 1)) : -1;
      const l = h >= 0 ? hexVal(path.charCodeAt(i + 2)) : -1;
      if (l < 0) return { refused: 'invalid percent-encoding in the path' };
      const v = h * 16 + l;
      i += 2;
      if (v === 0) return { refused: 'an encoded NUL (%00) in the path' };
      if (isUnreserved(v)) {
        s += lower && v >= 65 && v <= 90 ? String.fromCharCode(v + 32) : String.fromCharCode(v);
        continue;
      }
      if (v === 47 || v === 92) {
        if (cfg.encoded_slashes === 'reject') return { refused: `an encoded ${v === 47 ? 'slash (%2F)' : 'backslash (%5C)'} in the path` };
        if (cfg.encoded_slashes === 'decode') {
          if (v === 92 && cfg.backslashes === 'reject') return { refused: 'an encoded backslash (%5C) in the path' };
          s += '/';
          continue;
        }
      }
      s += '%' + HEX[h] + HEX[l];
      continue;
    }
    if (c <= 0x20 || c >= 0x7f) return { refused: 'a byte outside RFC 3986 in the path (send it percent-encoded)' };
    if (c === 35) return { refused: 'a fragment (#) in the request target' };
    if (c === 92) {
      if (cfg.backslashes === 'reject') return { refused: 'a backslash in the path' };
      if (cfg.backslashes === 'convert') c = 47;
    }
    if (lower && c >= 65 && c <= 90) c += 32;
    s += String.fromCharCode(c);
  }
  if (s.charCodeAt(0) !== 47) s = '/' + s;
  // 2. Segments: path parameters, then dot segments (RFC 3986 5.2.4; ".." at the root stays at the root).
  const segs = s.split('/');
  const trailing = segs.length > 1 && segs[segs.length - 1] === '';
  const outSegs: string[] = [];
  for (let k = 1; k < segs.length; k++) {
    let seg = segs[k]!;
    const semi = seg.indexOf(';');
    if (semi >= 0) {
      if (cfg.path_params === 'reject') return { refused: 'a path parameter (;) in the path' };
      if (cfg.path_params === 'strip') seg = seg.slice(0, semi);
    }
    const last = k === segs.length - 1;
    if (seg === '.') {
      if (last) outSegs.push('');
      continue;
    }
    if (seg === '..') {
      outSegs.pop();
      if (last) outSegs.push('');
      continue;
    }
    if (seg === '' && cfg.merge_slashes && !last) continue;
    outSegs.push(seg);
  }
  let r = '/' + outSegs.join('/');
  if (cfg.merge_slashes) r = r.replace(/\/{2,}/g, '/');
  if (trailing && !r.endsWith('/')) r += '/';
  return r;
}
