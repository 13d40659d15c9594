// Every example's README is backed by its run.sh, which starts what the example needs (stand-in apps, sidecars) and
// runs the documented commands, checking their output. Run here on free ports, so the examples stay true.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers/sidecar.js';
import { freePort } from '../helpers/upstream.js';

const EXAMPLES = path.join(ROOT, 'examples');
const withReadme = readdirSync(EXAMPLES, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(path.join(EXAMPLES, d.name, 'README.md')))
  .map((d) => d.name);

async function ports(): Promise<Record<string, string>> {
  const names = ['INBOUND_PORT', 'OUTBOUND_PORT', 'ADMIN_PORT', 'ORDERS_PORT', 'ORDERS_ADMIN_PORT', 'APP_PORT', 'APP2_PORT', 'APP3_PORT', 'B_ADMIN_PORT'];
  const env: Record<string, string> = {};
  const used = new Set<number>();
  for (const n of names) {
    let p = await freePort();
    while (used.has(p)) p = await freePort();
    used.add(p);
    env[n] = String(p);
  }
  return env;
}

/** Runs a script in its own process group; on timeout the whole group (apps, sidecars) is killed. */
function runScript(script: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => {
      out += `\n[killed after ${timeoutMs} ms]`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('examples', () => {
  it('every example with a README has a run.sh, and the README points to it and asks for no job-control kills', () => {
    assert.ok(withReadme.length >= 4, withReadme.join(', '));
    for (const name of withReadme) {
      const readme = readFileSync(path.join(EXAMPLES, name, 'README.md'), 'utf8');
      assert.ok(existsSync(path.join(EXAMPLES, name, 'run.sh')), `${name}/run.sh`);
      assert.match(readme, new RegExp(`examples/${name}/run\\.sh`), `${name}/README.md names its script`);
      assert.doesNotMatch(readme, /kill %\d/, `${name}/README.md`);
    }
  });

  for (const name of withReadme) {
    it(`${name}: run.sh passes every documented check`, async () => {
      const r = await runScript(path.join(EXAMPLES, name, 'run.sh'), await ports(), 60_000);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /all checks passed\n$/, r.out);
    });
  }
});
