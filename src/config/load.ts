// Loads a config: env interpolation, YAML with positions, schema validation, and errors as FILE:LINE:COL path: message.
import { tlsFileIssues } from './checks.js';
import { transcodeIssues } from '../filters/transcode/checks.js';
import { payloadIssues } from '../payloads/checks.js';
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isPair, isScalar, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { cluster as clusterSchema, configSchema, referenceIssues, type ClusterConfig, type Config } from './schema.js';
import { interpolate } from './interpolate.js';
import { closest } from './suggest.js';
import { DEFAULT_CONFIG_YAML } from './default.js';
import { ConfigError, formatIssue, type ConfigIssue } from './errors.js';
import { issueMessage } from './messages.js';
import { shadowedRoutes } from './shadow.js';
import { describeSyntaxErrors } from './yaml-errors.js';
import { pathAtOffset } from './yaml-paths.js';

export { ConfigError, formatIssue, formatIssueWithExcerpt, type ConfigIssue } from './errors.js';

export interface LoadedConfig {
  readonly config: Config;
  /** Where it came from: a file path, or "(embedded default)". */
  readonly source: string;
  /** A cluster with every default filled in, for clusters the runtime creates itself (forward-proxy pass-through). */
  readonly clusterDefaults: ClusterConfig;
  /** Things that are valid but almost certainly a mistake (a route that can never match). */
  readonly warnings?: readonly ConfigIssue[];
}

export interface CheckedConfig {
  readonly config: Config;
  readonly warnings: ConfigIssue[];
}

const clusterDefaults = (): ClusterConfig => clusterSchema.parse({ name: 'defaults', endpoints: ['127.0.0.1:1'] });

export function loadConfigFile(file: string, env: Readonly<Record<string, string | undefined>> = process.env): LoadedConfig {
  const { config, warnings } = checkConfig(readConfigText(file), file, env);
  return { config, source: file, clusterDefaults: clusterDefaults(), warnings };
}

/** The file's text; a file that cannot be read is a ConfigError like any other problem with it. */
export function readConfigText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    throw new ConfigError([{ file, line: 1, col: 1, path: '', message: `cannot read config: ${why}` }]);
  }
}

/** Loads config text already read from `file` (a reload reads the file itself, once it has stopped changing). */
export function loadConfigText(text: string, file: string, env: Readonly<Record<string, string | undefined>> = process.env): LoadedConfig {
  const { config, warnings } = checkConfig(text, file, env);
  return { config, source: file, clusterDefaults: clusterDefaults(), warnings };
}

export function loadDefaultConfig(env: Readonly<Record<string, string | undefined>> = process.env): LoadedConfig {
  const { config, warnings } = checkConfig(DEFAULT_CONFIG_YAML, '(embedded default)', env);
  return { config, source: '(embedded default)', clusterDefaults: clusterDefaults(), warnings };
}

/** Parses and validates config text; throws ConfigError listing every problem. */
export function parseConfig(text: string, file: string, env: Readonly<Record<string, string | undefined>> = process.env): Config {
  return checkConfig(text, file, env).config;
}

/** Parses and validates config text; throws ConfigError listing every problem, each once; returns warnings too. */
export function checkConfig(text: string, file: string, env: Readonly<Record<string, string | undefined>> = process.env): CheckedConfig {
  const original = new LineCounter();
  const written = parseDocument(text, { lineCounter: original, uniqueKeys: false }); // positions and keys as written
  const sourceLines = text.split(/\r?\n/);
  const at = (offset: number): { line: number; col: number } => original.linePos(offset);
  const issueAt = (offset: number, path: Path, message: string, excerpt = false): ConfigIssue => {
    const pos = at(offset);
    const issue: ConfigIssue = { file, ...pos, path: formatPath(path), message };
    if (excerpt && sourceLines[pos.line - 1] !== undefined) issue.excerpt = sourceLines[pos.line - 1]!;
    return issue;
  };

  // A missing variable is reported at the key using it; the rest of the file is still checked.
  const interpolated = interpolate(text, env);
  const envIssues = interpolated.errors.map((e) => issueAt(e.offset, pathAtOffset(written, e.offset), e.message));
  const envPaths = new Set(envIssues.map((i) => i.path).filter((p) => p !== ''));

  const doc = parseDocument(interpolated.text, { prettyErrors: false, uniqueKeys: true });
  const toFile = (o: number): number => interpolated.offsetMap(o);
  const duplicates = doc.errors.filter((e) => e.code === 'DUPLICATE_KEY');
  const issues: ConfigIssue[] = [...envIssues];
  for (const err of duplicates) {
    const path = pathAtOffset(doc, err.pos[0]);
    issues.push(issueAt(toFile(err.pos[0]), path, `duplicate key "${String(path[path.length - 1] ?? '')}" (the later one would silently win)`));
  }
  const syntax = describeSyntaxErrors(doc.errors.filter((e) => e.code !== 'DUPLICATE_KEY'), interpolated.text);
  for (const problem of syntax) {
    const path = problem.documentLevel ? [] : plainPrefix(pathAtOffset(doc, problem.offset));
    issues.push(issueAt(toFile(problem.offset), path, problem.message, true));
  }
  if (syntax.length) throw new ConfigError(sortIssues(issues));

  let data: unknown;
  try {
    data = doc.toJS() ?? {};
  } catch (e) {
    // toJS throws for an alias to an anchor that does not exist; point at the alias when it can be found.
    const name = e instanceof ReferenceError ? /: (\S+)$/.exec(e.message)?.[1] : undefined;
    const offset = name === undefined ? -1 : interpolated.text.indexOf(`*${name}`);
    const message = name === undefined ? 'cannot read the YAML here' : `alias *${name} names no anchor: define &${name} before it`;
    issues.push(offset < 0 ? { file, line: 1, col: 1, path: '', message } : issueAt(toFile(offset), plainPrefix(pathAtOffset(doc, offset)), message, true));
    throw new ConfigError(sortIssues(issues));
  }
  const result = configSchema.safeParse(data);
  if (result.success && issues.length === 0) {
    const files = [...tlsFileIssues(result.data), ...transcodeIssues(result.data), ...payloadIssues(result.data)];
    if (files.length > 0) {
      const position = (o: number): { line: number; col: number } => at(toFile(o));
      throw new ConfigError(sortIssues(files.map((f) => ({ file, ...positionOf(valueNode(doc, f.path), doc, f.path, position), path: formatPath(f.path), message: f.message }))));
    }
    const config = deepFreeze(result.data);
    return { config, warnings: configWarnings(config, doc, (o) => at(toFile(o)), file) };
  }

  const position = (o: number): { line: number; col: number } => at(toFile(o));
  if (!result.success) {
    for (const issue of result.error.issues) {
      for (const i of describeIssue(issue, doc, data, position, file)) {
        // The schema's complaint about a value left empty by a missing variable only repeats the variable's error.
        if (![...envPaths].some((p) => i.path === p || i.path.startsWith(`${p}.`) || i.path.startsWith(`${p}[`))) issues.push(i);
      }
    }
  }
  // The schema's cross-reference checks only run on valid data; run them on the raw data too, so one pass reports all.
  for (const ref of referenceIssues(data)) {
    issues.push(...describeIssue({ code: 'custom', path: ref.path, message: ref.message, input: undefined } as z.core.$ZodIssue, doc, data, position, file));
  }
  throw new ConfigError(sortIssues(issues));
}

/** A broken document parses into odd keys ("a port"); name only the keys that are plainly keys of the config. */
function plainPrefix(path: (string | number)[]): (string | number)[] {
  const end = path.findIndex((p) => typeof p === 'string' && !/^[A-Za-z0-9_.-]+$/.test(p));
  return end < 0 ? path : path.slice(0, end);
}

/** Sorted by position, each problem once (the schema's own cross-reference pass and the raw-data pass overlap). */
function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  const unique = issues.filter((i) => {
    const key = formatIssue(i);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return unique.sort((a, b) => a.line - b.line || a.col - b.col);
}

/** Valid but suspicious: routes that an earlier route shadows. */
function configWarnings(config: Config, doc: Document, at: (offset: number) => { line: number; col: number }, file: string): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  config.listeners.forEach((l, li) => {
    for (const s of shadowedRoutes(l.routes.map((r) => r.match))) {
      const path = ['listeners', li, 'routes', s.index];
      const by = l.routes[s.by]!.name;
      out.push({
        file,
        ...positionOf(valueNode(doc, path), doc, path, at),
        path: formatPath(path),
        message: `this route can never match: routes[${s.by}]${by ? ` ("${by}")` : ''} before it takes every request it would match (first match wins)`,
      });
    }
  });
  return out;
}

type Path = readonly PropertyKey[];

function describeIssue(
  issue: z.core.$ZodIssue,
  doc: Document,
  data: unknown,
  at: (offset: number) => { line: number; col: number },
  file: string,
): ConfigIssue[] {
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(issue.path, data);
    return issue.keys.map((key) => {
      const node = keyNode(doc, issue.path, key);
      const hint = closest(key, known);
      return {
        file,
        ...positionOf(node, doc, issue.path, at),
        path: formatPath([...issue.path, key]),
        message: `unknown key "${key}"${hint ? `; did you mean "${hint}"?` : known.length ? ` (allowed: ${known.join(', ')})` : ''}`,
      };
    });
  }
  if (issue.code === 'invalid_union' && issue.errors.length) {
    // Report the branch that got furthest instead of zod's "invalid input".
    const best = issue.errors.reduce((a, b) => (deepest(b) > deepest(a) ? b : a));
    if (best.length === 1 || issue.errors.every((e) => e.length === 1 && e[0]!.code === 'invalid_type')) {
      const expected = issue.errors.map((e) => e[0]).filter((e) => e?.code === 'invalid_type').map((e) => (e as { expected: string }).expected);
      if (expected.length === issue.errors.length) {
        return [{ file, ...positionOf(valueNode(doc, issue.path), doc, issue.path, at), path: formatPath(issue.path), message: `expected ${expected.join(' or ')}` }];
      }
    }
    return best.flatMap((sub) => describeIssue({ ...sub, path: [...issue.path, ...sub.path] } as z.core.$ZodIssue, doc, data, at, file));
  }
  const node = valueNode(doc, issue.path);
  const present = doc.hasIn(issue.path as unknown[]);
  return [{ file, ...positionOf(node, doc, issue.path, at), path: formatPath(issue.path), message: issueMessage(issue, data, present) }];
}

const deepest = (issues: readonly z.core.$ZodIssue[]): number => Math.max(...issues.map((i) => i.path.length));

export function formatPath(path: Path): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function valueNode(doc: Document, path: Path): YamlNode | undefined {
  // Walk up until some ancestor exists in the document (a missing key is reported at its parent).
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true);
    if (node && typeof node === 'object' && 'range' in node) return node as YamlNode;
  }
  return undefined;
}

function keyNode(doc: Document, parentPath: Path, key: string): YamlNode | undefined {
  const parent = doc.getIn(parentPath as unknown[], true) ?? (parentPath.length === 0 ? doc.contents : undefined);
  if (isMap(parent)) {
    for (const pair of parent.items) {
      if (isPair(pair) && isScalar(pair.key) && pair.key.value === key) return pair.key;
    }
  }
  return undefined;
}

function positionOf(
  node: YamlNode | undefined,
  doc: Document,
  _path: Path,
  at: (offset: number) => { line: number; col: number },
): { line: number; col: number } {
  const range = node?.range ?? doc.contents?.range;
  return range ? at(range[0]) : { line: 1, col: 1 };
}

/** Keys the schema allows at a path, for "did you mean"; `data` (the parsed document) picks a union's branch. */
function knownKeys(path: Path, data: unknown): string[] {
  const shape = objectShapeAt(configSchema, path, data);
  return shape ? Object.keys(shape) : [];
}

interface ZodDefLike {
  type: string;
  shape?: Record<string, unknown>;
  values?: unknown[];
  element?: unknown;
  innerType?: unknown;
  in?: unknown;
  options?: unknown[];
  valueType?: unknown;
}
const defOf = (s: unknown): ZodDefLike | undefined => (s as { _zod?: { def?: ZodDefLike } })?._zod?.def;

function unwrap(s: unknown): unknown {
  for (let d = defOf(s); d; d = defOf(s)) {
    if (d.type === 'default' || d.type === 'optional' || d.type === 'nullable' || d.type === 'prefault') s = d.innerType;
    else if (d.type === 'pipe') s = d.in;
    else break;
  }
  return s;
}

function objectShapeAt(schema: unknown, path: Path, data: unknown): Record<string, unknown> | undefined {
  let s = unwrap(schema);
  let value = data;
  for (const p of path) {
    const d = defOf(s);
    if (!d) return undefined;
    if (d.type === 'union') {
      const shape = branchFor(d, value);
      if (!shape) return undefined;
      s = unwrap(shape[String(p)]);
    } else if (d.type === 'object' && typeof p === 'string') s = unwrap(d.shape?.[p]);
    else if (d.type === 'array' && typeof p === 'number') s = unwrap(d.element);
    else if (d.type === 'record') s = unwrap(d.valueType);
    else return undefined;
    value = isRecord(value) || Array.isArray(value) ? (value as Record<PropertyKey, unknown>)[p] : undefined;
  }
  const d = defOf(s);
  if (d?.type === 'union') return branchFor(d, value);
  return d?.type === 'object' ? d.shape : undefined;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The object branch of a union that the document's value is written for: the one whose literal keys (a
 * discriminator such as a filter's `type`) it matches, else the one sharing most of its keys. Why: the first branch
 * would offer another filter's keys as "allowed".
 */
function branchFor(union: ZodDefLike, value: unknown): Record<string, unknown> | undefined {
  let best: Record<string, unknown> | undefined;
  let bestScore = -Infinity;
  for (const option of union.options ?? []) {
    const od = defOf(unwrap(option));
    const shape = od?.type === 'object' ? od.shape : undefined;
    if (!shape) continue;
    let score = 0;
    for (const [key, field] of Object.entries(shape)) {
      const fd = defOf(unwrap(field));
      const has = isRecord(value) && key in value;
      if (fd?.type === 'literal') score += has && fd.values?.includes(value[key]) ? 1000 : has ? -1000 : 0;
      else if (has) score++;
    }
    if (score > bestScore) {
      best = shape;
      bestScore = score;
    }
  }
  return best;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
