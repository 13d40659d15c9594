// Loads a config: env interpolation, YAML with positions, schema validation, and errors as FILE:LINE:COL path: message.
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isPair, isScalar, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { cluster as clusterSchema, configSchema, referenceIssues, type ClusterConfig, type Config } from './schema.js';
import { interpolate } from './interpolate.js';
import { closest } from './suggest.js';
import { DEFAULT_CONFIG_YAML } from './default.js';
import { ConfigError, type ConfigIssue } from './errors.js';

export { ConfigError, formatIssue, type ConfigIssue } from './errors.js';

export interface LoadedConfig {
  readonly config: Config;
  /** Where it came from: a file path, or "(embedded default)". */
  readonly source: string;
  /** A cluster with every default filled in, for clusters the runtime creates itself (forward-proxy pass-through). */
  readonly clusterDefaults: ClusterConfig;
}

const clusterDefaults = (): ClusterConfig => clusterSchema.parse({ name: 'defaults', endpoints: ['127.0.0.1:1'] });

export function loadConfigFile(file: string, env: Readonly<Record<string, string | undefined>> = process.env): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ file, line: 1, col: 1, path: '', message: `cannot read config: ${(e as Error).message}` }]);
  }
  return loadConfigText(text, file, env);
}

/** Loads config text already read from `file` (a reload reads the file itself, once it has stopped changing). */
export function loadConfigText(text: string, file: string, env: Readonly<Record<string, string | undefined>> = process.env): LoadedConfig {
  return { config: parseConfig(text, file, env), source: file, clusterDefaults: clusterDefaults() };
}

export function loadDefaultConfig(env: Readonly<Record<string, string | undefined>> = process.env): LoadedConfig {
  return { config: parseConfig(DEFAULT_CONFIG_YAML, '(embedded default)', env), source: '(embedded default)', clusterDefaults: clusterDefaults() };
}

/** Parses and validates config text; throws ConfigError listing every problem. */
export function parseConfig(text: string, file: string, env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const original = new LineCounter();
  parseDocument(text, { lineCounter: original }); // positions in the file as written
  const at = (offset: number): { line: number; col: number } => original.linePos(offset);

  const interpolated = interpolate(text, env);
  const issues: ConfigIssue[] = interpolated.errors.map((e) => ({ file, ...at(e.offset), path: '', message: e.message }));

  const lines = new LineCounter();
  const doc = parseDocument(interpolated.text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  for (const err of doc.errors) {
    issues.push({ file, ...at(interpolated.offsetMap(err.pos[0])), path: '', message: err.message.split('\n')[0]! });
  }
  if (issues.length) throw new ConfigError(issues);

  const data: unknown = doc.toJS() ?? {};
  const result = configSchema.safeParse(data);
  if (result.success) return deepFreeze(result.data);

  const position = (o: number): { line: number; col: number } => at(interpolated.offsetMap(o));
  for (const issue of result.error.issues) issues.push(...describeIssue(issue, doc, position, file));
  // The schema's cross-reference checks only run on valid data; run them on the raw data too, so one pass reports all.
  for (const ref of referenceIssues(data)) {
    issues.push(...describeIssue({ code: 'custom', path: ref.path, message: ref.message, input: undefined } as z.core.$ZodIssue, doc, position, file));
  }
  issues.sort((a, b) => a.line - b.line || a.col - b.col);
  throw new ConfigError(issues);
}

type Path = readonly PropertyKey[];

function describeIssue(
  issue: z.core.$ZodIssue,
  doc: Document,
  at: (offset: number) => { line: number; col: number },
  file: string,
): ConfigIssue[] {
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeys(issue.path);
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
    return best.flatMap((sub) => describeIssue({ ...sub, path: [...issue.path, ...sub.path] } as z.core.$ZodIssue, doc, at, file));
  }
  const node = valueNode(doc, issue.path);
  const present = doc.hasIn(issue.path as unknown[]);
  return [{ file, ...positionOf(node, doc, issue.path, at), path: formatPath(issue.path), message: issueMessage(issue, present) }];
}

const deepest = (issues: readonly z.core.$ZodIssue[]): number => Math.max(...issues.map((i) => i.path.length));

function issueMessage(issue: z.core.$ZodIssue, present: boolean): string {
  if (issue.code === 'invalid_type') return present ? `expected ${issue.expected}` : `required (expected ${issue.expected})`;
  if (issue.code === 'invalid_value') return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  return issue.message;
}

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

/** Keys the schema allows at a path, for "did you mean". */
function knownKeys(path: Path): string[] {
  const shape = objectShapeAt(configSchema, path);
  return shape ? Object.keys(shape) : [];
}

interface ZodDefLike {
  type: string;
  shape?: Record<string, unknown>;
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

function objectShapeAt(schema: unknown, path: Path): Record<string, unknown> | undefined {
  let s = unwrap(schema);
  for (const p of path) {
    const d = defOf(s);
    if (!d) return undefined;
    if (d.type === 'object' && typeof p === 'string') s = unwrap(d.shape?.[p]);
    else if (d.type === 'array' && typeof p === 'number') s = unwrap(d.element);
    else if (d.type === 'record') s = unwrap(d.valueType);
    else if (d.type === 'union') {
      const obj = d.options?.map(unwrap).find((o) => defOf(o)?.type === 'object');
      if (!obj) return undefined;
      s = unwrap(defOf(obj)!.shape?.[String(p)]);
    } else return undefined;
  }
  const d = defOf(s);
  if (d?.type === 'union') {
    const obj = d.options?.map(unwrap).find((o) => defOf(o)?.type === 'object');
    return obj ? defOf(obj)!.shape : undefined;
  }
  return d?.type === 'object' ? d.shape : undefined;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
