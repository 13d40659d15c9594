// Unit tests for the reload guards: reading a file until it settles, refusing accidental no-listener configs, readiness.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, truncateSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../config/load.js';
import { hashText, isEmptyText, readStable, readiness, refusal } from './reload-guard.js';

const tmpFile = (text: string): string => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'reload-guard-')), 'sidecar.yaml');
  writeFileSync(file, text);
  return file;
};

describe('readStable', () => {
  it('returns after two reads that agree', async () => {
    const file = tmpFile('listeners: []\n');
    let sleeps = 0;
    const read = await readStable(file, 10, 1000, async () => void sleeps++);
    assert.equal(read.text, 'listeners: []\n');
    assert.equal(read.hash, hashText('listeners: []\n'));
    assert.equal(sleeps, 1);
  });

  it('keeps reading while an in-place save is under way: truncated, then the first chunk, then the rest', async () => {
    const file = tmpFile('old: 1\n');
    truncateSync(file, 0);
    const steps = [() => writeFileSync(file, 'listeners:\n'), () => writeFileSync(file, 'listeners:\n  []\n')];
    let sleeps = 0;
    const read = await readStable(file, 10, 1000, async () => {
      steps[sleeps++]?.();
    });
    assert.equal(read.text, 'listeners:\n  []\n');
    assert.equal(sleeps, 3, 'empty, first chunk, whole file, whole file again');
  });

  it('counts a missing file as a change, and throws when it is still missing at the deadline', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'reload-guard-')), 'missing.yaml');
    let sleeps = 0;
    const appears = await readStable(file, 1, 1000, async () => {
      if (sleeps++ === 1) writeFileSync(file, 'a: 1\n');
    });
    assert.equal(appears.text, 'a: 1\n');
    const gone = path.join(path.dirname(file), 'never.yaml');
    await assert.rejects(readStable(gone, 1, 0, async () => {}), /ENOENT/);
  });

  it('gives up waiting after maxMs and returns the last read of a file that never settles', async () => {
    const file = tmpFile('n: 0\n');
    let n = 0;
    const read = await readStable(file, 1, 30, async () => {
      writeFileSync(file, `n: ${++n}\n`);
      await new Promise((r) => setTimeout(r, 5));
    });
    assert.equal(read.text, `n: ${n}\n`);
  });
});

describe('refusal', () => {
  const none = parseConfig('listeners: []\n', 't.yaml');
  const forced = parseConfig('allow_no_listeners: true\nlisteners: []\n', 't.yaml');
  const one = parseConfig('listeners: [{ name: a, port: 0, routes: [] }]\n', 't.yaml');
  it('refuses a config with no listeners while some serve, unless it says allow_no_listeners', () => {
    assert.equal(refusal(none, 2), 'no_listeners');
    assert.equal(refusal(parseConfig('# only a comment\n', 't.yaml'), 1), 'no_listeners');
    assert.equal(refusal(forced, 2), undefined);
    assert.equal(refusal(none, 0), undefined, 'nothing is serving: nothing to lose');
    assert.equal(refusal(one, 3), undefined);
  });
  it('treats whitespace-only text as empty', () => {
    assert.equal(isEmptyText(''), true);
    assert.equal(isEmptyText(' \n\t\n'), true);
    assert.equal(isEmptyText('# c\n'), false);
  });
});

describe('readiness', () => {
  it('is ready only when every configured listener is bound and the sidecar is not draining', () => {
    assert.equal(readiness(false, ['a', 'b'], () => true), undefined);
    assert.equal(readiness(false, ['a', 'b'], (n) => n === 'a'), 'listener not bound: b');
    assert.equal(readiness(false, ['a', 'b'], () => false), 'listeners not bound: a, b');
    assert.equal(readiness(false, [], () => true), 'no listeners configured');
    assert.equal(readiness(true, ['a'], () => true), 'draining');
  });
});
