// Guards the layering (docs/architecture.md, ADR 0005) by reading every source file's import lines: dependencies point inward.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The TypeScript sources (this test runs from dist/src/, the sources sit in src/). */
const srcRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

interface Import {
  /** Importing file, relative to src/ (e.g. 'runtime/route.ts'). */
  from: string;
  /** A file relative to src/ for our modules, else the package specifier (e.g. 'node:net'). */
  target: string;
  ours: boolean;
  /** `import type` (or every specifier `type`): erased by tsc, loads nothing at run time. */
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const from = path.relative(srcRoot, file);
  const found: Import[] = [];
  const add = (spec: string, typeOnly: boolean): void => {
    const ours = spec.startsWith('.');
    const target = ours ? path.relative(srcRoot, path.resolve(path.dirname(file), spec)).replace(/\.js$/, '.ts') : spec;
    found.push({ from, target, ours, typeOnly });
  };
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?([^;]*?)\s+from\s+'([^']+)'/gms)) {
    const clause = m[2]!;
    const braces = /^\{([^}]*)\}$/s.exec(clause.trim());
    const allTyped = braces !== null && braces[1]!.split(',').filter((s) => s.trim() !== '').every((s) => /^\s*type\s/.test(s));
    add(m[3]!, m[1] !== undefined || allTyped);
  }
  for (const m of text.matchAll(/^import\s+'([^']+)'/gm)) add(m[1]!, false);
  // Dynamic imports are dependencies too (lazy, but still an arrow in the graph).
  for (const m of text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)) add(m[1]!, false);
  return found;
}

const all = sourceFiles(srcRoot).flatMap(importsOf);
const folderOf = (file: string): string => (file.includes(path.sep) ? file.split(path.sep)[0]! : '');
const ourImports = all.filter((i) => i.ours && folderOf(i.target) !== folderOf(i.from));
const NETWORK = new Set(['node:net', 'node:http', 'node:http2', 'node:tls']);
const networkValueImports = all.filter((i) => NETWORK.has(i.target) && !i.typeOnly);

function violations(list: Import[]): string {
  return list.map((i) => `${i.from} -> ${i.target}`).join('\n');
}

describe('architecture: layering', () => {
  it('sees the source tree and its imports', () => {
    assert.ok(all.length > 200, `only ${all.length} imports found under ${srcRoot}`);
    assert.ok(all.some((i) => i.from === path.join('runtime', 'route.ts') && i.target === path.join('core', 'service.ts')));
  });

  it('core is vocabulary: it imports nothing else of ours', () => {
    const bad = ourImports.filter((i) => folderOf(i.from) === 'core');
    assert.equal(bad.length, 0, violations(bad));
  });

  it('the runtime imports nothing from listener, http-server, admin, orchestrator or cli', () => {
    const upper = new Set(['listener', 'http-server', 'admin', 'orchestrator', 'cli']);
    const bad = ourImports.filter((i) => folderOf(i.from) === 'runtime' && upper.has(folderOf(i.target)));
    assert.equal(bad.length, 0, violations(bad));
  });

  it('each upper layer is imported only from above it', () => {
    // listener <- orchestrator; http-server <- listener, orchestrator; admin <- orchestrator; orchestrator <- cli; cli <- nobody.
    const allowed: Record<string, string[]> = {
      cli: [],
      orchestrator: ['cli'],
      admin: ['orchestrator'],
      listener: ['orchestrator'],
      'http-server': ['listener', 'orchestrator'],
    };
    const bad = ourImports.filter((i) => {
      const importers = allowed[folderOf(i.target)];
      return importers !== undefined && !importers.includes(folderOf(i.from));
    });
    assert.equal(bad.length, 0, violations(bad));
  });

  it('pure modules import no node:net, node:http, node:http2 or node:tls', () => {
    const pureFolders = new Set(['core', 'router', 'balancers', 'policies', 'config', 'filters', 'runtime', 'observability']);
    const pureFiles = new Set([path.join('security', 'identity.ts'), path.join('security', 'spiffe-id.ts'), path.join('discovery', 'source.ts')]);
    // config/checks.ts validates TLS files with tls.createSecureContext; it runs in the config worker, not on the data path.
    const exceptions = new Set([path.join('config', 'checks.ts')]);
    const bad = networkValueImports.filter((i) => (pureFolders.has(folderOf(i.from)) || pureFiles.has(i.from)) && !exceptions.has(i.from));
    assert.equal(bad.length, 0, violations(bad));
  });

  it('only the transport layers touch node:net, node:http, node:http2 and node:tls', () => {
    const transportFolders = new Set(['listener', 'http-server', 'upstream', 'admin', 'orchestrator', 'cli']);
    // The health checker sends its HTTP probe with node:http; config/checks.ts: see above.
    const exceptions = new Set([path.join('cluster', 'health-checker.ts'), path.join('config', 'checks.ts')]);
    const bad = networkValueImports.filter((i) => !transportFolders.has(folderOf(i.from)) && !exceptions.has(i.from));
    assert.equal(bad.length, 0, violations(bad));
  });
});
