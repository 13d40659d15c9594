// Unit tests for the validator's extras: shadowed routes, warnings with positions, carets under syntax errors, empty files.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkConfig, ConfigError, formatIssueWithExcerpt } from './load.js';
import { nothingToServeIssues } from './checks.js';
import { covers, shadowedRoutes } from './shadow.js';
import type { RouteMatchConfig, ValueMatchConfig } from './schema.js';

const m = (x: RouteMatchConfig): RouteMatchConfig => x;
const header = (name: string, exact?: string): ValueMatchConfig => ({ name, invert: false, ...(exact === undefined ? { present: true } : { exact }) });

describe('shadowed routes', () => {
  it('a catch-all before later routes shadows them all', () => {
    assert.deepEqual(shadowedRoutes([m({ prefix: '/' }), m({ prefix: '/api' }), m({ exact: '/x', methods: ['GET'] })]), [
      { index: 1, by: 0 },
      { index: 2, by: 0 },
    ]);
    assert.deepEqual(shadowedRoutes([m({}), m({ regex: '/a.*' })]), [{ index: 1, by: 0 }]);
  });

  it('an exact path twice, and a prefix covering a later prefix or exact path', () => {
    assert.ok(covers(m({ exact: '/a' }), m({ exact: '/a' })));
    assert.ok(covers(m({ prefix: '/api' }), m({ prefix: '/api/v1' })));
    assert.ok(covers(m({ prefix: '/api' }), m({ exact: '/api/users' })));
    assert.ok(covers(m({ regex: '/a+' }), m({ regex: '/a+' })));
  });

  it('claims nothing it cannot prove', () => {
    assert.deepEqual(shadowedRoutes([m({ prefix: '/api/v1' }), m({ prefix: '/api' }), m({ exact: '/b' }), m({ prefix: '/b' })]), []);
    assert.equal(covers(m({ exact: '/a' }), m({ prefix: '/a' })), false);
    assert.equal(covers(m({ prefix: '/a' }), m({ regex: '/a.*' })), false, 'regexes are never compared beyond identity');
    assert.equal(covers(m({ regex: '.*' }), m({ prefix: '/x' })), false);
  });

  it('other conditions: the earlier route must ask for no more than the later one', () => {
    // Earlier is narrower (a method, a header, a host): the later route still gets the rest.
    assert.equal(covers(m({ prefix: '/', methods: ['GET'] }), m({ prefix: '/a' })), false);
    assert.equal(covers(m({ prefix: '/', headers: [header('x-canary', '1')] }), m({ prefix: '/a' })), false);
    assert.equal(covers(m({ hosts: ['a.example.com'] }), m({})), false);
    assert.equal(covers(m({ methods: ['GET'] }), m({ methods: ['GET', 'POST'] })), false);
    assert.equal(covers(m({ query: [header('v', '1')] }), m({ query: [header('v', '2')] })), false);
    // Later is narrower or equal: shadowed.
    assert.ok(covers(m({ prefix: '/', methods: ['GET', 'POST'] }), m({ prefix: '/a', methods: ['GET'] })));
    assert.ok(covers(m({ headers: [header('X-Canary', '1')] }), m({ prefix: '/a', headers: [header('x-canary', '1'), header('x-b')] })));
    assert.ok(covers(m({ hosts: ['*.example.com'] }), m({ hosts: ['a.example.com', '*.b.example.com'] })));
    assert.ok(covers(m({ hosts: ['*'] }), m({})));
    assert.equal(covers(m({ hosts: ['*.example.com'] }), m({ hosts: ['example.com'] })), false);
  });
});

describe('validator', () => {
  it('warns about a shadowed route at its position, and the config is still valid', () => {
    const yaml = `listeners:
  - name: in
    port: 8000
    routes:
      - name: all
        match: { prefix: / }
        cluster: app
      - name: api
        match: { prefix: /api }
        cluster: app
clusters: [{ name: app, endpoints: ["127.0.0.1:8080"] }]
`;
    const { config, warnings } = checkConfig(yaml, 'w.yaml', {});
    assert.equal(config.listeners[0]!.routes.length, 2);
    assert.deepEqual(
      warnings.map((w) => `${w.file}:${w.line}:${w.col} ${w.path}: ${w.message}`),
      ['w.yaml:8:9 listeners[0].routes[1]: this route can never match: routes[0] ("all") before it takes every request it would match (first match wins)'],
    );
  });

  it('shows the offending line with a caret under a syntax error, keeping tabs so the caret lines up', () => {
    const issuesOf = (yaml: string): string[] => {
      try {
        checkConfig(yaml, 't.yaml', {});
      } catch (e) {
        assert.ok(e instanceof ConfigError);
        return e.issues.map(formatIssueWithExcerpt);
      }
      assert.fail('expected a ConfigError');
    };
    assert.deepEqual(issuesOf('listeners:\n  - name: "a\n    port: 1\n'), [
      't.yaml:2:11 listeners[0].name: this quoted string is not closed: add the closing "\n      - name: "a\n              ^',
    ]);
    assert.deepEqual(issuesOf('admin:\n\tport: 1\n'), ['t.yaml:2:1 admin: a tab is used for indentation; YAML indents with spaces only\n    \tport: 1\n    ^']);
    assert.deepEqual(issuesOf('a:\n  b: x\n x: 2\n'), [
      't.yaml:3:2 x: this key is not lined up with the keys above it; indent every key of one mapping by the same number of spaces\n     x: 2\n     ^',
    ]);
  });

  it('an empty file or one without listeners has nothing to serve', () => {
    const check = (text: string): string[] =>
      nothingToServeIssues(text, checkConfig(text, 'e.yaml', {}).config, 'e.yaml').map((i) => `${i.line}:${i.col} ${i.path}: ${i.message}`);
    assert.deepEqual(check(''), ['1:1 : the file is empty: a config needs at least one listener']);
    assert.deepEqual(check('# only a comment\n---\n'), ['1:1 : the file is empty: a config needs at least one listener']);
    assert.deepEqual(check('admin: { port: 0 }\nlisteners: []\n'), ['2:1 listeners: no listeners: the sidecar would serve nothing but the admin port; add at least one listener']);
    assert.deepEqual(check('listeners: [{ name: a, port: 0 }]\n'), []);
  });
});

describe('access_log', () => {
  const issuesOf = (yaml: string): string[] => {
    try {
      checkConfig(yaml, 'a.yaml', {});
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.issues.map((i) => `${i.file}:${i.line}:${i.col} ${i.path}: ${i.message}`);
    }
    return [];
  };
  const base = 'listeners: [{ name: in, port: 8000, routes: [{ match: { prefix: / }, direct_response: { status: 200 } }] }]\n';

  it('an unknown text_format operator fails with its YAML path and line, and a suggestion', () => {
    assert.deepEqual(issuesOf(`${base}access_log:\n  format: text\n  text_format: "%METHOD% %RESPONSE_CODES%"\n`), [
      'a.yaml:4:16 access_log.text_format: unknown access-log operator %RESPONSE_CODES%; did you mean "RESPONSE_CODE"?',
    ]);
  });

  it('text_format needs format text; headers lists are for json and ecs; the ratio is a share', () => {
    assert.match(issuesOf(`${base}access_log: { text_format: "%METHOD%" }\n`).join('\n'), /access_log\.text_format: text_format needs format: text/);
    assert.match(issuesOf(`${base}access_log: { format: text, request_headers: [x-a] }\n`).join('\n'), /access_log\.request_headers: format text logs headers with %REQ/);
    assert.match(issuesOf(`${base}access_log: { filter: { ratio: 2 } }\n`).join('\n'), /access_log\.filter\.ratio/);
    assert.match(issuesOf(`${base}access_log: { format: xml }\n`).join('\n'), /access_log\.format/);
  });

  it('a valid block parses with its defaults', () => {
    const { config } = checkConfig(`${base}access_log: { format: ecs, filter: { slower_than: 250ms, ratio: 0.5 }, sensitive_headers: [X-Token] }\n`, 'a.yaml', {});
    assert.deepEqual(config.access_log.filter, { only_errors: false, slower_than: 250, ratio: 0.5 });
    assert.deepEqual(config.access_log.request_headers, []);
    assert.deepEqual(config.access_log.sensitive_headers, ['x-token'], 'header names are lower-cased');
  });
});
