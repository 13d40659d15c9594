// SPIFFE ID validation against the SPIFFE spec's rules (trust domain, path segments, no query/fragment/port/userinfo).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSpiffeId, spiffeIdFromSubjectAltName, trustDomainProblem } from './spiffe-id.js';

describe('parseSpiffeId', () => {
  it('accepts workload and trust-domain IDs', () => {
    const web = parseSpiffeId('spiffe://example.org/ns/default/sa/web', true);
    assert.deepEqual(web, { ok: true, value: { trustDomain: 'example.org', path: '/ns/default/sa/web', text: 'spiffe://example.org/ns/default/sa/web' } });
    assert.equal(parseSpiffeId('spiffe://my_domain-1.example/A.b-c_D/x').ok, true);
    assert.deepEqual(parseSpiffeId('spiffe://example.org'), { ok: true, value: { trustDomain: 'example.org', path: '', text: 'spiffe://example.org' } });
  });

  const refused: Array<[string, RegExp]> = [
    ['http://example.org/web', /scheme must be "spiffe"/],
    ['SPIFFE://example.org/web', /scheme must be "spiffe"/],
    ['example.org/web', /must start with spiffe:\/\//],
    ['spiffe://Example.org/web', /upper-case/],
    ['spiffe://example.org:8443/web', /port or userinfo/],
    ['spiffe://user@example.org/web', /userinfo/],
    ['spiffe:///web', /trust domain is empty/],
    ['spiffe://exa mple.org/web', /may only use a-z/],
    ['spiffe://example.org/ns//web', /empty path segments/],
    ['spiffe://example.org/web/', /trailing "\/"/],
    ['spiffe://example.org/./web', /"\." path segments/],
    ['spiffe://example.org/ns/../web', /"\.\." path segments/],
    ['spiffe://example.org/web?x=1', /query/],
    ['spiffe://example.org/web#frag', /fragment/],
    ['spiffe://example.org/w%20b', /percent-encoding/],
    ['spiffe://example.org/w*b', /path segment "w\*b" may only use/],
    [`spiffe://example.org/${'a'.repeat(2048)}`, /longer than 2048 bytes/],
  ];
  for (const [id, why] of refused) {
    it(`refuses ${id.slice(0, 60)}`, () => {
      const r = parseSpiffeId(id);
      assert.equal(r.ok, false);
      if (!r.ok) {
        assert.match(r.error, why);
        assert.match(r.error, /is not a valid SPIFFE ID/);
      }
    });
  }

  it('a workload identity needs a path', () => {
    const r = parseSpiffeId('spiffe://example.org', true);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.error, /needs a path, e\.g\. spiffe:\/\/example\.org\/ns\/default\/sa\/web/);
  });
});

describe('trustDomainProblem', () => {
  it('accepts lower-case names and refuses the rest', () => {
    assert.equal(trustDomainProblem('example.org'), undefined);
    assert.equal(trustDomainProblem('prod_mesh-2'), undefined);
    assert.match(trustDomainProblem('')!, /empty/);
    assert.match(trustDomainProblem('a'.repeat(256))!, /longer than 255/);
    assert.match(trustDomainProblem('example.org/x')!, /may only use/);
  });
});

describe('spiffeIdFromSubjectAltName', () => {
  it('finds the one spiffe URI among SANs', () => {
    assert.equal(spiffeIdFromSubjectAltName('URI:spiffe://example.org/ns/a/sa/b, DNS:web.local'), 'spiffe://example.org/ns/a/sa/b');
    assert.equal(spiffeIdFromSubjectAltName('DNS:web.local, URI:https://example.org/'), undefined);
    assert.equal(spiffeIdFromSubjectAltName('URI:spiffe://a/x, URI:spiffe://a/y'), undefined, 'an SVID carries exactly one');
    assert.equal(spiffeIdFromSubjectAltName(undefined), undefined);
  });
});
