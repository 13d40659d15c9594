// Regenerates the files derived from the config schema: schema/sidecar.schema.json and docs/config.md.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configJsonSchema } from '../src/config/json-schema.js';
import { configReference } from '../src/config/reference.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
writeFileSync(path.join(root, 'schema/sidecar.schema.json'), `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
writeFileSync(path.join(root, 'docs/config.md'), configReference());
process.stdout.write('wrote schema/sidecar.schema.json and docs/config.md\n');
