// The google.api.http path template parser and matcher.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matchTemplate, parseTemplate, specificity, splitPath, TemplateError } from './path-template.js';

const match = (template: string, path: string): Record<string, string> | undefined => {
  const m = matchTemplate(parseTemplate(template), splitPath(path));
  return m ? Object.fromEntries(m) : undefined;
};

describe('path templates: parse', () => {
  it('literals, variables, nested field paths, multi-segment patterns, ** and verbs', () => {
    const t = parseTemplate('/v1/{name=projects/*/things/*}:cancel');
    assert.deepEqual(t.segments.map((s) => (s.kind === 'literal' ? s.text : s.kind)), ['v1', 'projects', 'any', 'things', 'any']);
    assert.deepEqual(t.variables, [{ field: 'name', start: 1, end: 5 }]);
    assert.equal(t.verb, 'cancel');
    assert.deepEqual(parseTemplate('/v1/{book.shelf.id}/x').variables, [{ field: 'book.shelf.id', start: 1, end: 2 }]);
    assert.equal(parseTemplate('/files/{path=**}').segments[1]!.kind, 'rest');
  });

  it('refuses malformed templates, saying what is wrong', () => {
    for (const [bad, why] of [
      ['v1/x', /must start with "\/"/],
      ['/v1/{name', /without "}"/],
      ['/v1/{1bad}', /bad field path/],
      ['/v1/**/x', /"\*\*" must be the last/],
      ['/v1//x', /empty segment/],
      ['/v1/{a}/{a}', /bound twice/],
      ['/v1/{a=}', /bad variable pattern/],
    ] as const) {
      assert.throws(() => parseTemplate(bad), (e: unknown) => e instanceof TemplateError && why.test(e.message), bad);
    }
  });
});

describe('path templates: match', () => {
  it('binds single and multi-segment variables, decoded', () => {
    assert.deepEqual(match('/v1/things/{name}', '/v1/things/a%20b'), { name: 'a b' });
    assert.deepEqual(match('/v1/{name=shelves/*/things/*}', '/v1/shelves/s1/things/t1'), { name: 'shelves/s1/things/t1' });
    assert.deepEqual(match('/v1/{parent=shelves/*}/things', '/v1/shelves/s1/things'), { parent: 'shelves/s1' });
    assert.deepEqual(match('/v1/{a.b}/{c}', '/v1/x/y'), { 'a.b': 'x', c: 'y' });
  });

  it('** takes the rest (zero or more segments); a multi-segment variable keeps an encoded slash', () => {
    assert.deepEqual(match('/files/{path=**}', '/files/a/b/c'), { path: 'a/b/c' });
    assert.deepEqual(match('/files/**', '/files'), {});
    assert.deepEqual(match('/v1/{name=shelves/*/things/*}', '/v1/shelves/a%2Fb/things/t'), { name: 'shelves/a%2Fb/things/t' });
  });

  it('verbs must be present exactly', () => {
    assert.deepEqual(match('/v1/{name=things/*}:cancel', '/v1/things/x:cancel'), { name: 'things/x' });
    assert.equal(match('/v1/{name=things/*}:cancel', '/v1/things/x'), undefined);
    assert.equal(match('/v1/{name=things/*}:cancel', '/v1/things/x:undo'), undefined);
  });

  it('does not match other lengths, literals or empty segments', () => {
    assert.equal(match('/v1/things/{name}', '/v1/things'), undefined);
    assert.equal(match('/v1/things/{name}', '/v1/things/a/b'), undefined);
    assert.equal(match('/v1/things/{name}', '/v1/stuff/a'), undefined);
    assert.equal(match('/v1/things/{name}', '/v1/things/'), undefined);
    assert.equal(match('/v1/things/{name}', '/v1/things/%zz'), undefined);
  });

  it('more literal segments rank first, ** last', () => {
    const a = parseTemplate('/v1/things/special');
    const b = parseTemplate('/v1/things/{name}');
    const c = parseTemplate('/v1/{rest=**}');
    assert.ok(specificity(a) > specificity(b));
    assert.ok(specificity(b) > specificity(c));
  });
});
