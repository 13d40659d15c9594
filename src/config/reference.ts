// Builds the config reference (docs/config.md) by walking the zod schema: every key with its type, default and meaning.
import { z } from 'zod';
import { configSchema } from './schema.js';
import { formatDuration, formatSize } from './units.js';

interface Row {
  path: string;
  type: string;
  required: boolean;
  default: string;
  description: string;
}

interface Def {
  type: string;
  innerType?: unknown;
  in?: unknown;
  out?: unknown;
  shape?: Record<string, unknown>;
  element?: unknown;
  options?: unknown[];
  entries?: Record<string, string>;
  values?: unknown[];
  keyType?: unknown;
  valueType?: unknown;
  defaultValue?: unknown;
}
const defOf = (s: unknown): Def => (s as { _zod: { def: Def } })._zod.def;
const describeOf = (s: unknown): string | undefined => z.globalRegistry.get(s as z.ZodType)?.description;

function typeName(s: unknown): string {
  const d = defOf(s);
  const desc = describeOf(s) ?? '';
  if (desc.startsWith('Duration')) return 'duration';
  if (desc.startsWith('Size')) return 'size';
  switch (d.type) {
    case 'default':
    case 'optional':
    case 'prefault':
      return typeName(d.innerType);
    case 'pipe':
      return typeName(d.in);
    case 'enum':
      return Object.values(d.entries ?? {}).map((v) => `\`${v}\``).join(' \\| ');
    case 'literal':
      return (d.values ?? []).map((v) => `\`${String(v)}\``).join(' \\| ');
    case 'array':
      return `list of ${typeName(d.element)}`;
    case 'record':
      return `map of ${typeName(d.valueType)}`;
    case 'union':
      return (d.options ?? []).map(typeName).join(' or ');
    case 'object':
      return 'object';
    default:
      return d.type;
  }
}

function fmtDefault(v: unknown, type: string): string {
  if (v === undefined) return '';
  if (type === 'duration' && typeof v === 'number') return `\`${formatDuration(v)}\``;
  if (type === 'size' && typeof v === 'number') return `\`${formatSize(v)}\``;
  if (typeof v === 'object' && v !== null) return Array.isArray(v) ? `\`${JSON.stringify(v)}\`` : '';
  return `\`${String(v)}\``;
}

function walk(schema: unknown, path: string, rows: Row[], required: boolean, description: string | undefined, dflt: unknown): void {
  let s = schema;
  let desc = description ?? describeOf(s);
  let def: unknown = dflt;
  let req = required;
  // Peel wrappers, remembering defaults, optionality and descriptions found on the way.
  for (;;) {
    const d = defOf(s);
    desc ??= describeOf(s);
    if (d.type === 'default' || d.type === 'prefault') {
      def = typeof d.defaultValue === 'function' ? (d.defaultValue as () => unknown)() : d.defaultValue;
      req = false;
      s = d.innerType;
    } else if (d.type === 'optional') {
      req = false;
      s = d.innerType;
    } else break;
  }
  const d = defOf(s);
  const type = typeName(s);
  if (path) rows.push({ path, type, required: req, default: fmtDefault(def, type), description: desc ?? '' });
  const target = d.type === 'pipe' ? defOf(d.in) : d;
  if (target.type === 'object') {
    for (const [k, v] of Object.entries(target.shape ?? {})) walk(v, path ? `${path}.${k}` : k, rows, true, undefined, undefined);
  } else if (target.type === 'array') {
    const el = defOf(target.element);
    if (el.type === 'object' || (el.type === 'pipe' && defOf(el.in).type === 'object')) walk(target.element, `${path}[]`, rows, true, undefined, undefined);
    if (el.type === 'union') {
      const objects = (el.options ?? []).filter((o) => defOf(o).type === 'object');
      const tagOf = (o: unknown): string | undefined => {
        const t = defOf(o).shape?.type;
        return t !== undefined && defOf(t).type === 'literal' ? String(defOf(t).values?.[0]) : undefined;
      };
      // A list of entries told apart by `type` (filters): each kind gets its own rows.
      if (objects.length > 1 && objects.every((o) => tagOf(o) !== undefined)) {
        for (const o of objects) walk(o, `${path}[type=${tagOf(o)}]`, rows, true, undefined, undefined);
      } else if (objects[0]) walk(objects[0], `${path}[]`, rows, true, undefined, undefined);
    }
  }
}

export function configReference(): string {
  const rows: Row[] = [];
  walk(configSchema, '', rows, true, undefined, undefined);
  const out = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run gen`; a test fails when this file is out of date. -->',
    '',
    'One YAML file configures the sidecar (`sidecar run -c sidecar.yaml`); `sidecar validate -c FILE` checks it and',
    '`sidecar schema` prints the JSON Schema (also in `schema/sidecar.schema.json`, for editor autocompletion).',
    '',
    '- Unknown keys are errors (with a "did you mean" suggestion).',
    '- `${VAR}` and `${VAR:-default}` are replaced from the environment before parsing; `$$` is a literal `$`.',
    '- Durations: `250ms`, `5s`, `1m`, `1h` (or a number of milliseconds). Sizes: `512`, `64KiB`, `10MB`, `1GiB`.',
    '- `[]` in a path means "each item of the list"; `[type=X]` means "each item of the list whose type is X".',
    '',
    '| key | type | default | description |',
    '|---|---|---|---|',
  ];
  for (const r of rows) {
    const dflt = r.default || (r.required ? '**required**' : '');
    out.push(`| \`${r.path}\` | ${r.type} | ${dflt} | ${r.description.replace(/\|/g, '\\|')} |`);
  }
  return `${out.join('\n')}\n`;
}
