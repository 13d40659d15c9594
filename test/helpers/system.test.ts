// The system-package helper: present things pass untouched, and a missing one that cannot be installed fails with
// the command that installs it (never a skip).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasCommand, requireCommand, requirePackage } from './system.js';

describe('requirePackage / requireCommand', () => {
  it('passes without installing anything when the check holds', () => {
    let checks = 0;
    requirePackage('thing', 'some-package', () => ++checks > 0, false);
    assert.equal(checks, 1);
    requireCommand('sh', 'dash');
  });

  it('fails with the exact install command when the thing is missing and this process may not install it', () => {
    assert.throws(
      () => requirePackage('the Python module `grpc`', 'python3-grpcio', () => false, false),
      (err: Error) => err.message === 'the Python module `grpc` is missing: install it with `sudo apt-get update && sudo apt-get install -y python3-grpcio` (Debian/Ubuntu)',
    );
  });

  it('finds commands on PATH', () => {
    assert.equal(hasCommand('sh'), true);
    assert.equal(hasCommand('no-such-command-for-sidecar-tests'), false);
  });
});
