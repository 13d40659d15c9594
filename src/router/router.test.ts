// Unit tests for route matching: hosts, paths, methods, headers, query, first-match-wins, and "match never throws".
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { HeaderList } from '../core/headers.js';
import type { RouteMatchConfig } from '../config/schema.js';
import { compileHostMatcher, compileRouteMatch, queryValue, stripPort, type MatchInput } from './matchers.js';
import { RouteTable, splitPath } from './route-table.js';

const input = (over: Partial<MatchInput> = {}): MatchInput => ({
  method: 'GET',
  host: 'api.example.com',
  pathname: '/v1/items',
  query: '',
  headers: new HeaderList(),
  ...over,
});
const m = (cfg: Partial<RouteMatchConfig>): ((i: MatchInput) => boolean) =>
  compileRouteMatch({ headers: undefined, query: undefined, ...cfg } as RouteMatchConfig);

describe('route matching', () => {
  it('matches hosts exactly and by leading wildcard, ignoring port and case', () => {
    const h = compileHostMatcher(['example.com', '*.svc.local', 'Upper.Case:8080']);
    assert.equal(h('example.com'), true);
    assert.equal(h('a.example.com'), false);
    assert.equal(h('x.svc.local'), true);
    assert.equal(h('a.b.svc.local'), true);
    assert.equal(h('svc.local'), false);
    assert.equal(h('upper.case'), true);
    assert.equal(compileHostMatcher(['*'])('anything'), true);
    assert.equal(stripPort('[::1]:80'), '[::1]');
    assert.equal(stripPort('h:80'), 'h');
  });

  it('matches path exact, prefix and anchored regex', () => {
    assert.equal(m({ exact: '/v1/items' })(input()), true);
    assert.equal(m({ exact: '/v1' })(input()), false);
    assert.equal(m({ prefix: '/v1/' })(input()), true);
    assert.equal(m({ prefix: '/v2' })(input()), false);
    assert.equal(m({ regex: '/v[0-9]+/items' })(input()), true);
    assert.equal(m({ regex: 'items' })(input()), false, 'regex is anchored to the whole path');
  });

  it('matches methods, headers (exact, present, absent, regex, invert) and query params', () => {
    const headers = new HeaderList(['x-canary', '1', 'user-agent', 'curl/8.0']);
    const i = input({ headers, query: 'debug=true&name=a%20b&flag' });
    assert.equal(m({ methods: ['GET', 'HEAD'] })(i), true);
    assert.equal(m({ methods: ['POST'] })(i), false);
    assert.equal(m({ headers: [{ name: 'X-Canary', exact: '1', invert: false }] })(i), true);
    assert.equal(m({ headers: [{ name: 'x-canary', exact: '2', invert: false }] })(i), false);
    assert.equal(m({ headers: [{ name: 'x-missing', present: false, invert: false }] })(i), true);
    assert.equal(m({ headers: [{ name: 'user-agent', regex: 'curl/.*', invert: false }] })(i), true);
    assert.equal(m({ headers: [{ name: 'x-canary', invert: true }] })(i), false);
    assert.equal(m({ query: [{ name: 'debug', exact: 'true', invert: false }] })(i), true);
    assert.equal(m({ query: [{ name: 'name', exact: 'a b', invert: false }] })(i), true);
    assert.equal(m({ query: [{ name: 'flag', invert: false }] })(i), true);
    assert.equal(queryValue('a=1&b=2', 'b'), '2');
    assert.equal(queryValue('', 'b'), undefined);
  });

  it('first match wins', () => {
    const table = new RouteTable([
      { match: { prefix: '/v1', headers: [{ name: 'x-canary', exact: '1', invert: false }] }, route: 'canary' },
      { match: { prefix: '/v1' }, route: 'stable' },
      { match: {}, route: 'fallback' },
    ]);
    assert.equal(table.match(input({ headers: new HeaderList(['x-canary', '1']) })), 'canary');
    assert.equal(table.match(input()), 'stable');
    assert.equal(table.match(input({ pathname: '/other' })), 'fallback');
    assert.deepEqual(splitPath('/a?b=c?d'), { pathname: '/a', query: 'b=c?d' });
  });

  it('never throws, whatever the request', () => {
    const table = new RouteTable([
      { match: { hosts: ['*.x.com'], regex: '/a.*', query: [{ name: 'q', regex: '\\d+', invert: false }] }, route: 1 },
      { match: { headers: [{ name: 'h', exact: 'v', invert: true }], methods: ['GET'] }, route: 2 },
    ]);
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), fc.string(), fc.array(fc.string(), { maxLength: 8 }), (method, host, path, query, raw) => {
        const headers = new HeaderList(raw.length % 2 ? raw.slice(1) : raw);
        table.match({ method, host, pathname: path, query, headers });
      }),
    );
  });
});
