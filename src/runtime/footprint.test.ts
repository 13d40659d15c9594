// Guards the memory budget: the long-lived process must not statically load zod or yaml (config parsing runs in a
// worker thread), nor undici (the HTTP/1.1 upstream is the sidecar's own; undici only drives the bench's baseline),
// nor the X.509 library and reflect-metadata (only `sidecar certs` makes certificates), nor jose (loaded by jwt_authn
// on first use), nor @opentelemetry/* (loaded by the tracing filter's first export), nor the TLS listener and
// upstream code (loaded when a config has TLS).
// A value import of config/schema.ts would undo that.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const distSrc = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Every module reachable through static imports (dynamic `import()` is excluded: it is what keeps them lazy). */
function staticGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:(?:import|export)\s[^;]*?from\s+'([^']+)'|import\s+'([^']+)')/gm)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
      else seen.add(`pkg:${spec}`);
    }
  };
  visit(entry);
  return seen;
}

/** The tracing filter loads these on its first export (filters/tracing/otlp.ts). */
const OTEL = ['api', 'core', 'resources', 'sdk-trace-base', 'sdk-trace', 'otlp-transformer'].map((p) => `pkg:@opentelemetry/${p}`);

describe('process footprint', () => {
  it('the CLI entry does not statically load zod, yaml, undici, @peculiar/x509, reflect-metadata, jose, etcd3 or ioredis', () => {
    const graph = staticGraph(path.join(distSrc, 'cli/main.js'));
    for (const pkg of ['pkg:zod', 'pkg:yaml', 'pkg:undici', 'pkg:@peculiar/x509', 'pkg:reflect-metadata', 'pkg:jose', 'pkg:etcd3', 'pkg:ioredis', ...OTEL]) assert.ok(!graph.has(pkg), `${pkg} is reachable: ${[...graph].filter((f) => !f.startsWith('pkg:')).length} modules`);
    for (const file of graph) {
      if (!file.startsWith('pkg:')) assert.doesNotMatch(readFileSync(file, 'utf8'), /require[^)]*undici/, `${file} loads undici`);
    }
    assert.ok(!graph.has(path.join(distSrc, 'config/schema.js')), 'config/schema.js must be imported as a type only outside src/config');
  });

  it('protobufjs loads only when a route has a transcode filter (filters/transcode/pb.ts requires it on first use)', () => {
    const graph = staticGraph(path.join(distSrc, 'cli/main.js'));
    assert.ok(!graph.has('pkg:protobufjs'), 'protobufjs is statically reachable');
    assert.ok(graph.has(path.join(distSrc, 'filters/transcode/pb.js')), 'the transcode filter is registered');
  });

  it('the TLS listener and upstream code load only for a config with TLS (orchestrator/tls-code.ts)', () => {
    const graph = staticGraph(path.join(distSrc, 'cli/main.js'));
    for (const file of ['listener/tls.js', 'upstream/tls-connector.js', 'security/tls-material.js']) assert.ok(!graph.has(path.join(distSrc, file)), `${file} is statically reachable`);
  });
});
