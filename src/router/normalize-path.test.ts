// Path normalization: the known path-confusion shapes (Envoy CVE-2019-9901 dot segments, CVE-2019-15225/CVE-2021-29492
// escaped slashes, Istio CVE-2021-31920 encoded slashes, CVE-2021-39156 fragments) and the config choices.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_PATH_NORMALIZATION as D, normalizePath, normalizeTarget, type PathNormalization } from './normalize-path.js';

const with_ = (o: Partial<PathNormalization>): PathNormalization => ({ ...D, ...o });
const refused = (r: string | { refused: string }): boolean => typeof r !== 'string';

describe('normalizePath (defaults)', () => {
  const cases: Array<[string, string]> = [
    ['/', '/'],
    ['/admin', '/admin'],
    ['//admin', '/admin'],
    ['///admin//x//', '/admin/x/'],
    ['/public/../admin', '/admin'],
    ['/public/./../admin', '/admin'],
    ['/../../admin', '/admin'],
    ['/%2e%2e/admin', '/admin'],
    ['/public/%2E%2E/admin', '/admin'],
    ['/public/.%2e/admin', '/admin'],
    ['/%61dmin', '/admin'],
    ['/admin;x', '/admin'],
    ['/admin;x/y', '/admin/y'],
    ['/public/..;/admin', '/admin'],
    ['/a/b/.', '/a/b/'],
    ['/a/b/..', '/a/'],
    ['/a/%7euser', '/a/~user'],
    ['/a%20b', '/a%20b'],
    ['/a%c3%a9', '/a%C3%A9'],
    ['/.well-known/x', '/.well-known/x'],
    ['/a/.hidden', '/a/.hidden'],
    ['/%252e%252e/admin', '/%252e%252e/admin'],
    ['/ADMIN', '/ADMIN'],
  ];
  for (const [input, want] of cases) it(`${input} -> ${want}`, () => assert.equal(normalizePath(input, D), want));

  for (const bad of ['/public/..%2Fadmin', '/admin%2f', '/admin%2F..', '/a%5cb', '/a\\admin', '/..\\admin', '/a%', '/a%zz', '/a%2', '/a%00b', '/a#frag', '/a b', '/a\u00e9', '/a\u0000'])
    it(`refuses ${JSON.stringify(bad)}`, () => assert.ok(refused(normalizePath(bad, D))));
});

describe('normalizePath options', () => {
  it('encoded slashes: keep leaves them as data, never a separator', () => {
    assert.equal(normalizePath('/public/..%2Fadmin', with_({ encoded_slashes: 'keep' })), '/public/..%2Fadmin');
    assert.equal(normalizePath('/admin%2f', with_({ encoded_slashes: 'keep' })), '/admin%2F');
  });
  it('encoded slashes: decode makes them separators before dot segments', () => {
    assert.equal(normalizePath('/public/..%2Fadmin', with_({ encoded_slashes: 'decode' })), '/admin');
    assert.equal(normalizePath('/admin%2f', with_({ encoded_slashes: 'decode' })), '/admin/');
    assert.ok(refused(normalizePath('/a%5Cb', with_({ encoded_slashes: 'decode' }))));
    assert.equal(normalizePath('/x/..%5Cadmin', with_({ encoded_slashes: 'decode', backslashes: 'convert' })), '/admin');
  });
  it('backslashes: convert and keep', () => {
    assert.equal(normalizePath('/public\\..\\admin', with_({ backslashes: 'convert' })), '/admin');
    assert.equal(normalizePath('/a\\b', with_({ backslashes: 'keep' })), '/a\\b');
  });
  it('path params: reject and keep', () => {
    assert.ok(refused(normalizePath('/admin;x', with_({ path_params: 'reject' }))));
    assert.equal(normalizePath('/admin;x', with_({ path_params: 'keep' })), '/admin;x');
  });
  it('case: lower', () => {
    assert.equal(normalizePath('/ADMIN/%4Bey', with_({ case: 'lower' })), '/admin/key');
    assert.equal(normalizePath('/a%C3%A9', with_({ case: 'lower' })), '/a%C3%A9');
  });
  it('merge_slashes off keeps empty segments', () => {
    assert.equal(normalizePath('//a//b', with_({ merge_slashes: false })), '//a//b');
  });
  it('disabled passes the target through; the query is never touched', () => {
    assert.equal(normalizeTarget('//a/../b?x=/../%2F', with_({ enabled: false })), '//a/../b?x=/../%2F');
    assert.equal(normalizeTarget('//a/../b?x=/../%2F', D), '/b?x=/../%2F');
  });
});

describe('normalizePath properties', () => {
  const pathChar = fc.constantFrom('a', 'B', '/', '.', '%', '2', 'e', 'F', 'f', ';', '\\', '~', '-', '5', 'c', '0');
  const path = fc.array(pathChar, { maxLength: 40 }).map((cs) => '/' + cs.join(''));
  const configs = fc.record({
    enabled: fc.constant(true),
    merge_slashes: fc.boolean(),
    encoded_slashes: fc.constantFrom('reject' as const, 'keep' as const, 'decode' as const),
    backslashes: fc.constantFrom('reject' as const, 'convert' as const, 'keep' as const),
    path_params: fc.constantFrom('strip' as const, 'reject' as const, 'keep' as const),
    case: fc.constantFrom('keep' as const, 'lower' as const),
  });
  it('is idempotent, starts with /, has no dot segment and (merged) no empty segment', () => {
    fc.assert(
      fc.property(path, configs, (p, cfg) => {
        const once = normalizePath(p, cfg);
        if (typeof once !== 'string') return;
        assert.equal(normalizePath(once, cfg), once, `not idempotent for ${p}`);
        assert.ok(once.startsWith('/'));
        const segs = once.split('/');
        assert.ok(!segs.includes('..') && !segs.includes('.'), `dot segment left in ${once} from ${p}`);
        if (cfg.merge_slashes) assert.ok(!once.includes('//'), `empty segment in ${once}`);
        if (cfg.path_params === 'strip') assert.ok(!once.includes(';'));
      }),
      { seed: 15, numRuns: 5000 },
    );
  });
});
