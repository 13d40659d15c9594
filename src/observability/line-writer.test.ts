import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
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
