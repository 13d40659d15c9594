// Regenerates the files derived from the config schema (schema/sidecar.schema.json, docs/config.md) and the series
// table of docs/metrics.md (from the metrics catalogue).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configJsonSchema } from '../src/config/json-schema.js';
import { configReference } from '../src/config/reference.js';
import { metricsDoc } from '../src/observability/metric-docs.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
writeFileSync(path.join(root, 'schema/sidecar.schema.json'), `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
writeFileSync(path.join(root, 'docs/config.md'), configReference());
const metrics = path.join(root, 'docs/metrics.md');
writeFileSync(metrics, metricsDoc(readFileSync(metrics, 'utf8')));
process.stdout.write('wrote schema/sidecar.schema.json, docs/config.md and the series table of docs/metrics.md\n');
