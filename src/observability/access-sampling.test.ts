import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilter, idFraction } from './access-sampling.js';

test('no filter keeps everything without a predicate', () => {
  assert.equal(compileFilter({}), undefined);
  assert.equal(compileFilter({ ratio: 1 }), undefined);
});

test('only errors, only slow, combined', () => {
  const e = compileFilter({ onlyErrors: true })!;
  assert.equal(e(200, undefined, 1, 'a'), false);
  assert.equal(e(503, undefined, 1, 'a'), true);
  assert.equal(e(200, 'UF', 1, 'a'), true);
  const both = compileFilter({ onlyErrors: true, minDurationMs: 100 })!;
  assert.equal(both(500, undefined, 50, 'a'), false);
  assert.equal(both(500, undefined, 150, 'a'), true);
});

test('the ratio is deterministic per id and near the share asked', () => {
  const f = compileFilter({ ratio: 0.1 })!;
  let kept = 0;
  for (let i = 0; i < 10000; i++) if (f(200, undefined, 1, `req-${i}`)) kept++;
  assert.ok(kept > 800 && kept < 1200, String(kept));
  assert.equal(f(200, undefined, 1, 'x'), f(200, undefined, 1, 'x'));
  assert.ok(idFraction('x') >= 0 && idFraction('x') < 1);
});

test('short runs of counter-like ids are sampled near the ratio too', () => {
  const f = compileFilter({ ratio: 0.25 })!;
  let kept = 0;
  for (let i = 0; i < 80; i++) if (f(200, undefined, 1, `ratio-${i}`)) kept++;
  assert.ok(kept >= 10 && kept <= 30, String(kept));
});
