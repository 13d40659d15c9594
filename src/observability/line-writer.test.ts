import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { LineWriter } from './line-writer.js';

const tmpFile = (): string => path.join(mkdtempSync(path.join(os.tmpdir(), 'line-writer-')), 'out.log');

describe('LineWriter', () => {
  it('writes every line, in order, across many chunks, with non-ASCII text and a line larger than a chunk', async () => {
    const file = tmpFile();
    const w = new LineWriter(file);
    const expected: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const line = `{"n":${i},"path":"/é/${'x'.repeat(i % 300)}"}\n`;
      expected.push(line);
      w.write(line);
    }
    const big = `${'y'.repeat(200_000)}\n`;
    expected.push(big);
    w.write(big);
    w.write('last\n');
    expected.push('last\n');
    await new Promise((r) => setTimeout(r, 300)); // async writes drain
    w.close();
    assert.equal(readFileSync(file, 'utf8'), expected.join(''));
    assert.equal(w.dropped, 0);
  });

  it('reopen() after a rename: lines already handed over stay in the old file, new ones go to a new file', async () => {
    const file = tmpFile();
    const w = new LineWriter(file);
    w.write('before\n');
    await new Promise((r) => setTimeout(r, 300));
    renameSync(file, `${file}.1`);
    w.write('during\n'); // buffered before the reopen: written wherever the writer points when it flushes
    w.reopen();
    w.write('after\n');
    await new Promise((r) => setTimeout(r, 300));
    w.close();
    assert.equal(readFileSync(`${file}.1`, 'utf8'), 'before\n');
    assert.equal(readFileSync(file, 'utf8'), 'during\nafter\n');
  });

  it('a partial chunk goes out on the timer, without close', async () => {
    const file = tmpFile();
    const w = new LineWriter(file);
    w.write('one\n');
    assert.equal(readFileSync(file, 'utf8'), '', 'batched, not written at once');
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(readFileSync(file, 'utf8'), 'one\n');
    w.close();
  });

  it('lines after close are dropped and counted', () => {
    const file = tmpFile();
    const w = new LineWriter(file);
    w.write('kept\n');
    w.close();
    w.write('late\n');
    assert.equal(w.dropped, 1);
    assert.equal(readFileSync(file, 'utf8'), 'kept\n');
  });
});
