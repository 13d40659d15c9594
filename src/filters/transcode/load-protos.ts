// Reads .proto sources (and their imports) into one protobufjs Root: imports resolve against the importing file's
// folder, then the include paths, then the vendored google/api + google/rpc files and protobufjs's well-known types.
// Every problem names the file and line.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as protobuf from 'protobufjs';
import { pb } from './pb.js';

export class ProtoError extends Error {
  constructor(readonly file: string, readonly line: number, readonly detail: string) {
    super(`${file}:${line}: ${detail}`);
  }
}

/** The package's protos/ folder (google/api, google/rpc), from dist/src/filters/transcode/ or src/filters/transcode/. */
const VENDORED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../protos');
const VENDORED_DIR = existsSync(VENDORED) ? VENDORED : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../protos');
/** protobufjs's own google/protobuf/*.proto (descriptor.proto among them; the common ones are built in). */
const protobufjsDir = (): string => path.dirname(fileURLToPath(import.meta.resolve('protobufjs')));

export interface LoadedProtos {
  readonly root: protobuf.Root;
  /** Absolute file name to its source text, for positions of problems found after parsing. */
  readonly sources: ReadonlyMap<string, string>;
}

/** Loads `files` (relative to `baseDir`) and `imports` (import names, e.g. google/rpc/status.proto); throws ProtoError. */
export function loadProtos(files: readonly string[], include: readonly string[], baseDir: string, imports: readonly string[] = []): LoadedProtos {
  const { Root } = pb();
  const root = new Root();
  const sources = new Map<string, string>();
  const includeDirs = include.map((d) => path.resolve(baseDir, d));
  const visit = (file: string, importer: string | undefined, importLine: number): void => {
    if (sources.has(file)) return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
      if (importer !== undefined) throw new ProtoError(importer, importLine, `cannot read import ${path.basename(file)} (${file}): ${why}`);
      throw new ProtoError(file, 1, `cannot read .proto file: ${why}`);
    }
    sources.set(file, text);
    let parsed: protobuf.IParserResult;
    try {
      (pb().parse as unknown as { filename: string | null }).filename = file;
      parsed = pb().parse(text, root, { keepCase: true });
    } catch (e) {
      const msg = (e as Error).message;
      const line = /line (\d+)\)/.exec(msg);
      throw new ProtoError(file, line ? Number(line[1]) : 1, msg.replace(/\s*\((?:[^()]*, )?line \d+\)/, ''));
    } finally {
      (pb().parse as unknown as { filename: string | null }).filename = null;
    }
    for (const imp of [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])]) {
      const line = lineOf(text, new RegExp(`import\\s+(?:weak\\s+|public\\s+)?["']${escape(imp)}["']`));
      if (builtin(imp)) {
        // protobufjs's bundled common types (timestamp, any, struct...): added once, as the Root's loader would.
        const name = imp.slice(imp.lastIndexOf('google/protobuf/'));
        if (!sources.has(name)) {
          sources.set(name, '');
          root.addJSON(snakeFields(commonJson(name).nested ?? {}) as Record<string, protobuf.AnyNestedObject>);
        }
        continue;
      }
      const found = resolveImport(imp, path.dirname(file), includeDirs);
      if (found === undefined) throw new ProtoError(file, line, `import "${imp}" not found (looked beside the file, in include: [${include.join(', ')}] and the bundled google/api, google/rpc, google/protobuf)`);
      visit(found, file, line);
    }
  };
  for (const f of files) visit(path.resolve(baseDir, f), undefined, 1);
  for (const imp of imports) {
    const found = resolveImport(imp, baseDir, includeDirs);
    if (found === undefined) throw new ProtoError(imp, 1, 'bundled file missing from the installation');
    visit(found, undefined, 1);
  }
  try {
    root.resolveAll();
  } catch (e) {
    throw positioned((e as Error).message, sources);
  }
  return { root, sources };
}

type Common = { nested?: Record<string, protobuf.AnyNestedObject> };
const commonJson = (name: string): Common => (pb().common as unknown as Record<string, Common>)[name] ?? {};
/**
 * protobufjs's bundled well-known types name their fields in camelCase (typeUrl, nullValue); the real .proto files
 * say type_url, null_value. Renamed back so every message in the Root uses proto names (what keepCase gives the rest).
 */
function snakeFields(json: unknown): unknown {
  if (Array.isArray(json)) return json.map(snakeFields);
  if (json === null || typeof json !== 'object') return json;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    if ((k === 'fields' || k === 'oneofs') && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const renamed: Record<string, unknown> = {};
      for (const [f, d] of Object.entries(v as Record<string, unknown>)) {
        const oneof = k === 'oneofs' ? { ...(d as Record<string, unknown>), oneof: ((d as { oneof: string[] }).oneof ?? []).map(snake) } : snakeFields(d);
        renamed[k === 'fields' ? snake(f) : f] = oneof;
      }
      out[k] = renamed;
    } else out[k] = snakeFields(v);
  }
  return out;
}

const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

const builtin = (imp: string): boolean => {
  const i = imp.lastIndexOf('google/protobuf/');
  return i >= 0 && imp.slice(i) in (pb().common as unknown as Record<string, unknown>);
};

function resolveImport(imp: string, dir: string, includeDirs: readonly string[]): string | undefined {
  const candidates = [path.resolve(dir, imp), ...includeDirs.map((d) => path.resolve(d, imp))];
  if (imp.startsWith('google/api/') || imp.startsWith('google/rpc/')) candidates.push(path.join(VENDORED_DIR, imp));
  if (imp.startsWith('google/protobuf/')) candidates.push(path.join(protobufjsDir(), imp));
  return candidates.find((c) => existsSync(c));
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function lineOf(text: string, pattern: RegExp): number {
  const m = pattern.exec(text);
  return m ? text.slice(0, m.index).split('\n').length : 1;
}

/** A resolve error ("no such Type or Enum 'Foo' in Type .pkg.A") placed at the first line naming the missing type. */
function positioned(message: string, sources: ReadonlyMap<string, string>): ProtoError {
  const missing = /'([^']+)'/.exec(message)?.[1];
  if (missing !== undefined) {
    const word = new RegExp(`(^|[^A-Za-z0-9_.])${escape(missing)}([^A-Za-z0-9_]|$)`);
    for (const [file, text] of sources) {
      if (text === '' || !word.test(text)) continue;
      return new ProtoError(file, lineOf(text, word), message);
    }
  }
  const [first] = sources.keys();
  return new ProtoError(first ?? '(no file)', 1, message);
}

/**
 * A compiled FileDescriptorSet (protoc --include_imports --descriptor_set_out, buf build -o) as a Root, through
 * protobufjs/ext/descriptor; field names stay proto names, as with sources. Throws ProtoError naming the file.
 */
export function loadDescriptorSet(file: string, baseDir: string): LoadedProtos {
  const abs = path.resolve(baseDir, file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(abs);
  } catch (e) {
    throw new ProtoError(abs, 1, `cannot read descriptor set: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const ext = createRequire(import.meta.url)('protobufjs/ext/descriptor') as unknown;
  void ext; // registers Root.fromDescriptor
  const { Root } = pb();
  const fromDescriptor = (Root as unknown as { fromDescriptor?: (b: Uint8Array) => protobuf.Root }).fromDescriptor;
  if (fromDescriptor === undefined) throw new ProtoError(abs, 1, 'protobufjs/ext/descriptor is not available');
  let root: protobuf.Root;
  try {
    root = fromDescriptor.call(Root, bytes);
    root.resolveAll();
  } catch (e) {
    throw new ProtoError(abs, 1, `not a FileDescriptorSet protobufjs can read: ${(e as Error).message}`);
  }
  return { root, sources: new Map([[abs, '']]) };
}
