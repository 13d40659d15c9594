import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isIdentityPattern, isSpiffeId, matchesAny, matchesIdentity, spiffeIdOf } from './identity.js';

test('spiffeIdOf finds the SPIFFE URI SAN among others', () => {
  assert.equal(spiffeIdOf('DNS:web.local, URI:spiffe://example.org/ns/default/sa/web, IP Address:127.0.0.1'), 'spiffe://example.org/ns/default/sa/web');
  assert.equal(spiffeIdOf('URI:"spiffe://example.org/ns/a/sa/b"'), 'spiffe://example.org/ns/a/sa/b');
  assert.equal(spiffeIdOf('DNS:web.local, URI:https://example.org/x'), undefined);
  assert.equal(spiffeIdOf(undefined), undefined);
});

test('isSpiffeId refuses malformed IDs', () => {
  assert.ok(isSpiffeId('spiffe://example.org/ns/default/sa/web'));
  assert.ok(isSpiffeId('spiffe://example.org'));
  for (const bad of ['spiffe://Example.org/x', 'spiffe://example.org//x', 'spiffe://example.org/x/', 'http://example.org/x', 'spiffe://example.org/x?y', 'spiffe://example.org/../x']) {
    assert.equal(isSpiffeId(bad), false, bad);
  }
});

test('patterns: exact, * for one segment, trailing ** for the rest; never a wildcard trust domain', () => {
  assert.ok(matchesIdentity('spiffe://example.org/ns/default/sa/web', 'spiffe://example.org/ns/default/sa/web'));
  assert.ok(matchesIdentity('spiffe://example.org/ns/default/sa/web', 'spiffe://example.org/ns/*/sa/web'));
  assert.ok(!matchesIdentity('spiffe://example.org/ns/default/sa/web', 'spiffe://example.org/ns/*/sa/api'));
  assert.ok(!matchesIdentity('spiffe://example.org/ns/default/sa/web/extra', 'spiffe://example.org/ns/*/sa/web'));
  assert.ok(matchesIdentity('spiffe://example.org/ns/default/sa/web', 'spiffe://example.org/ns/**'));
  assert.ok(!matchesIdentity('spiffe://example.org/ns', 'spiffe://example.org/ns/**'));
  assert.ok(!matchesIdentity('spiffe://evil.org/ns/default/sa/web', 'spiffe://example.org/ns/*/sa/web'));
  assert.ok(!matchesIdentity('spiffe://evil.org/x', 'spiffe://*/x'));
  assert.ok(isIdentityPattern('spiffe://example.org/ns/*/sa/web'));
  assert.ok(isIdentityPattern('spiffe://example.org/**'));
  assert.ok(!isIdentityPattern('spiffe://*/x'));
  assert.ok(matchesAny('spiffe://example.org/a', ['spiffe://example.org/b', 'spiffe://example.org/a']));
});
