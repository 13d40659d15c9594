// google.api.http path templates: parse once ("/v1/{name=projects/*/things/*}:cancel"), match request paths to field values.

/** One path segment of a template: a literal, `*` (one segment) or `**` (the rest, last only). */
export type Segment = { readonly kind: 'literal'; readonly text: string } | { readonly kind: 'any' } | { readonly kind: 'rest' };

/** A `{field.path=...}` variable: the segments [start, end) it captures. */
export interface Variable {
  readonly field: string;
  readonly start: number;
  readonly end: number;
}

export interface PathTemplate {
  readonly source: string;
  readonly segments: readonly Segment[];
  readonly variables: readonly Variable[];
  /** The custom verb after the last segment (`:cancel`), or undefined. */
  readonly verb: string | undefined;
}

export class TemplateError extends Error {}

const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;
const LITERAL = /^[A-Za-z0-9\-._~%!$&'()+,;=@]+$/;

/** Parses a template (grammar of google/api/http.proto); throws TemplateError saying what is wrong. */
export function parseTemplate(source: string): PathTemplate {
  if (!source.startsWith('/')) throw new TemplateError(`path template "${source}" must start with "/"`);
  let body = source.slice(1);
  let verb: string | undefined;
  // The verb is a ':' after the last segment, outside any variable braces.
  const lastSlash = body.lastIndexOf('/');
  const lastBrace = body.lastIndexOf('}');
  const colon = body.indexOf(':', Math.max(lastSlash, lastBrace) + 1);
  if (colon >= 0) {
    verb = body.slice(colon + 1);
    body = body.slice(0, colon);
    if (!LITERAL.test(verb)) throw new TemplateError(`path template "${source}": bad verb ":${verb}"`);
  }
  const segments: Segment[] = [];
  const variables: Variable[] = [];
  let i = 0;
  const addSegment = (text: string): void => {
    if (text === '*') segments.push({ kind: 'any' });
    else if (text === '**') segments.push({ kind: 'rest' });
    else if (LITERAL.test(text)) segments.push({ kind: 'literal', text });
    else throw new TemplateError(`path template "${source}": bad segment "${text}"`);
  };
  while (i <= body.length) {
    if (body[i] === '{') {
      const close = body.indexOf('}', i);
      if (close < 0) throw new TemplateError(`path template "${source}": "{" without "}"`);
      const inner = body.slice(i + 1, close);
      const eq = inner.indexOf('=');
      const field = eq < 0 ? inner : inner.slice(0, eq);
      if (!FIELD_PATH.test(field)) throw new TemplateError(`path template "${source}": bad field path "${field}"`);
      if (variables.some((v) => v.field === field)) throw new TemplateError(`path template "${source}": field "${field}" bound twice`);
      const start = segments.length;
      const pattern = eq < 0 ? '*' : inner.slice(eq + 1);
      if (pattern === '' || pattern.includes('{')) throw new TemplateError(`path template "${source}": bad variable pattern "${pattern}"`);
      for (const s of pattern.split('/')) addSegment(s);
      variables.push({ field, start, end: segments.length });
      i = close + 1;
    } else {
      const slash = body.indexOf('/', i);
      const end = slash < 0 ? body.length : slash;
      const text = body.slice(i, end);
      if (text === '') throw new TemplateError(`path template "${source}": empty segment`);
      addSegment(text);
      i = end;
    }
    if (i >= body.length) break;
    if (body[i] !== '/') throw new TemplateError(`path template "${source}": expected "/" after segment`);
    i++;
  }
  const rest = segments.findIndex((s) => s.kind === 'rest');
  if (rest >= 0 && rest !== segments.length - 1) throw new TemplateError(`path template "${source}": "**" must be the last segment`);
  return { source, segments, variables, verb };
}

/** Splits a request path (no query) into segments and its verb, for matching against templates that have one. */
export function splitPath(pathname: string): string[] {
  const body = pathname.startsWith('/') ? pathname.slice(1) : pathname;
  return body === '' ? [] : body.split('/');
}

/**
 * The field values a request path binds, or undefined when it does not match. `segments` come from splitPath (still
 * percent-encoded); values are decoded, a multi-segment variable keeps its slashes.
 */
export function matchTemplate(t: PathTemplate, segments: readonly string[]): Map<string, string> | undefined {
  let parts = segments;
  if (t.verb !== undefined) {
    const last = parts[parts.length - 1];
    const suffix = `:${t.verb}`;
    if (last === undefined || !last.endsWith(suffix)) return undefined;
    parts = [...parts.slice(0, -1), last.slice(0, -suffix.length)];
  }
  const hasRest = t.segments.length > 0 && t.segments[t.segments.length - 1]!.kind === 'rest';
  if (hasRest ? parts.length < t.segments.length - 1 : parts.length !== t.segments.length) return undefined;
  for (let i = 0; i < t.segments.length; i++) {
    const s = t.segments[i]!;
    if (s.kind === 'rest') break;
    const p = parts[i]!;
    if (s.kind === 'literal' ? p !== s.text : p === '') return undefined;
  }
  const out = new Map<string, string>();
  for (const v of t.variables) {
    const end = v.end === t.segments.length && hasRest ? parts.length : v.end;
    const taken = parts.slice(v.start, end);
    try {
      out.set(v.field, taken.length === 1 ? decodeURIComponent(taken[0]!) : taken.map(decodeKeepSlash).join('/'));
    } catch {
      return undefined;
    }
  }
  return out;
}

/** Multi-segment variables keep an encoded slash encoded (reserved expansion). */
const decodeKeepSlash = (s: string): string => s.split(/%2F/i).map(decodeURIComponent).join('%2F');

/** Ordering among a transcoder's bindings: more literal segments first, `**` last, so the most specific wins. */
export function specificity(t: PathTemplate): number {
  let n = 0;
  for (const s of t.segments) n += s.kind === 'literal' ? 4 : s.kind === 'any' ? 1 : 0;
  if (t.verb !== undefined) n += 2;
  if (t.segments.some((s) => s.kind === 'rest')) n -= 1;
  return n;
}
