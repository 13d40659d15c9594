// docs/metrics.md and the label table agree with the catalogue: every family documented, with its labels.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { allFamilies, metricsDoc } from './metric-docs.js';
import { METRIC_LABELS } from './metric-labels.js';

const DOC = fileURLToPath(new URL('../../../docs/metrics.md', import.meta.url));

describe('docs/metrics.md', () => {
  it('every family has its labels declared, and no declared family is gone', () => {
    const names = allFamilies().map((f) => f.name);
    for (const n of names) assert.ok(Object.hasOwn(METRIC_LABELS, n), `${n}: add its labels to src/observability/metric-labels.ts`);
    for (const n of Object.keys(METRIC_LABELS)) assert.ok(names.includes(n), `${n} is declared but no longer registered`);
  });

  it('has the generated series table up to date (npm run build && node dist/scripts/gen-docs.js)', () => {
    const doc = readFileSync(DOC, 'utf8');
    assert.equal(doc, metricsDoc(doc));
    for (const f of allFamilies()) assert.ok(doc.includes(`| \`${f.name}\` | ${f.kind} |`), f.name);
  });
});
