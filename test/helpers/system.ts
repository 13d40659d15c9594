// Test helper: makes sure a system program (or a Debian package's module) is present, installing it with apt-get when
// running as root, and otherwise failing (never skipping) with the exact command that installs it.
import { execFileSync, spawnSync } from 'node:child_process';

/** apt-get update runs at most once per test process: the package lists do not change within a run. */
let aptUpdated = false;

const succeeds = (cmd: string, args: readonly string[]): boolean => spawnSync(cmd, args, { stdio: 'ignore', timeout: 30_000 }).status === 0;

/** True when `cmd` is on PATH (or is an executable path). */
export const hasCommand = (cmd: string): boolean => succeeds('sh', ['-c', `command -v '${cmd.replace(/'/g, "'\\''")}'`]);

/**
 * Ensures `check()` holds, installing `debianPackage` with apt-get when it does not and this process is root.
 * Throws (the test fails) with the command to run when it still does not hold.
 */
export function requirePackage(what: string, debianPackage: string, check: () => boolean, canInstall = process.getuid?.() === 0 && hasCommand('apt-get')): void {
  if (check()) return;
  const install = `apt-get install -y ${debianPackage}`;
  if (canInstall) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    try {
      if (!aptUpdated) {
        execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env, timeout: 300_000 });
        aptUpdated = true;
      }
      execFileSync('apt-get', ['install', '-y', '-qq', debianPackage], { stdio: ['ignore', 'ignore', 'inherit'], env, timeout: 600_000 });
    } catch (err) {
      throw new Error(`${what} is missing and \`${install}\` failed: ${(err as Error).message}`);
    }
    if (check()) return;
    throw new Error(`${what} is still missing after \`${install}\``);
  }
  throw new Error(`${what} is missing: install it with \`sudo apt-get update && sudo ${install}\` (Debian/Ubuntu)`);
}

/** Ensures the program `cmd` is on PATH (see requirePackage). */
export function requireCommand(cmd: string, debianPackage: string): void {
  requirePackage(`\`${cmd}\``, debianPackage, () => hasCommand(cmd));
}

/** Debian's python3-* packages install for the system interpreter, not a pyenv or venv python3 that PATH may find first. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** Ensures SYSTEM_PYTHON can `import module` (see requirePackage). */
export function requirePythonModule(module: string, debianPackage: string): void {
  requireCommand(SYSTEM_PYTHON, 'python3');
  requirePackage(`the Python module \`${module}\` for ${SYSTEM_PYTHON}`, debianPackage, () => succeeds(SYSTEM_PYTHON, ['-c', `import ${module}`]));
}
