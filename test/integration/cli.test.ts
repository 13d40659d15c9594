// The `sidecar` command line: validate, schema, help, version, exit codes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { BIN, ROOT } from '../helpers/sidecar.js';

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function tmpFile(text: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'sidecar-cli-')), 'sidecar.yaml');
  writeFileSync(file, text);
  return file;
}

describe('cli', () => {
  it('validate: exit 0 and a one-line summary for a valid file', async () => {
    const r = await run(['validate', '-c', path.join(ROOT, 'examples/demo/server-sidecar.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^.*server-sidecar\.yaml: valid \(1 listeners, 4 routes, 2 clusters\)\n$/);
  });

  it('every example config validates', async () => {
    const { readdirSync } = await import('node:fs');
    const dir = path.join(ROOT, 'examples');
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 4);
    for (const f of files) {
      const r = await run(['validate', '-c', path.join(dir, f)]);
      assert.equal(r.code, 0, `${f}: ${r.stderr}`);
    }
  });

  it('validate: exit 2 with FILE:LINE:COL path: message for every error', async () => {
    const file = tmpFile('listeners:\n  - name: a\n    prot: 1\n    port: 80\nclusterz: []\n');
    const r = await run(['validate', '-c', file]);
    assert.equal(r.code, 2);
    assert.deepEqual(r.stderr.trim().split('\n'), [
      `${file}:3:5 listeners[0].prot: unknown key "prot"; did you mean "port"?`,
      `${file}:5:1 clusterz: unknown key "clusterz"; did you mean "clusters"?`,
    ]);
  });

  it('validate: a missing file is exit 2 with a message', async () => {
    const r = await run(['validate', '-c', '/nonexistent/sidecar.yaml']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot read config/);
  });

  it('run with an invalid file exits 2 without listening', async () => {
    const r = await run(['run', '-c', tmpFile('listeners: 3\n')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /:1:12 listeners: expected array/);
  });

  it('schema prints a JSON Schema that rejects unknown keys', async () => {
    const r = await run(['schema']);
    assert.equal(r.code, 0);
    const schema = JSON.parse(r.stdout) as { $schema: string; properties: Record<string, unknown>; additionalProperties: boolean };
    assert.match(schema.$schema, /json-schema\.org/);
    assert.ok('listeners' in schema.properties && 'clusters' in schema.properties);
    assert.equal(schema.additionalProperties, false);
  });

  it('--help on every command, --version, and unknown commands', async () => {
    for (const cmd of [[], ['run'], ['validate'], ['schema']]) {
      const r = await run([...cmd, '--help']);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /Usage: sidecar/);
    }
    const v = await run(['--version']);
    assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
    const bad = await run(['frobnicate']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command "frobnicate"/);
    const badFlag = await run(['run', '--nope']);
    assert.equal(badFlag.code, 2);
    const none = await run([]);
    assert.equal(none.code, 2, 'no command is a usage error');
    assert.match(none.stderr, /a command is required[\s\S]*Usage: sidecar/);
  });
});
