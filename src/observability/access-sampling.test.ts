import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilter, idFraction } from './access-sampling.js';

test('no filter keeps everything without a predicate', () => {
  assert.equal(compileFilter({}), undefined);
  assert.equal(compileFilter({ ratio: 1 }), undefined);
});

test('only errors, only slow; combined, any test keeps a request', () => {
  const e = compileFilter({ onlyErrors: true })!;
  assert.equal(e(200, undefined, 1, 'a'), false);
  assert.equal(e(404, undefined, 1, 'a'), false);
  assert.equal(e(503, undefined, 1, 'a'), true);
  assert.equal(e(200, 'UF', 1, 'a'), true);
  const s = compileFilter({ minDurationMs: 100 })!;
  assert.equal(s(500, undefined, 50, 'a'), false);
  assert.equal(s(200, undefined, 100, 'a'), true);
  const both = compileFilter({ onlyErrors: true, minDurationMs: 100 })!;
  assert.equal(both(200, undefined, 50, 'a'), false);
  assert.equal(both(500, undefined, 50, 'a'), true, 'a fast error');
  assert.equal(both(200, undefined, 150, 'a'), true, 'a slow success');
});

test('errors and slow ones, plus a share of the rest', () => {
  const f = compileFilter({ onlyErrors: true, minDurationMs: 100, ratio: 0.1 })!;
  let kept = 0;
  for (let i = 0; i < 10000; i++) if (f(200, undefined, 1, `req-${i}`)) kept++;
  assert.ok(kept > 800 && kept < 1200, String(kept));
  for (let i = 0; i < 100; i++) assert.ok(f(502, undefined, 1, `err-${i}`) && f(200, undefined, 500, `slow-${i}`));
  assert.equal(compileFilter({ onlyErrors: true, ratio: 1 }), undefined, 'a ratio of 1 keeps everything');
  const none = compileFilter({ ratio: 0 })!;
  assert.equal(none(500, 'UF', 1e6, 'a'), false);
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
