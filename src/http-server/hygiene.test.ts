// Unit tests for the authority check and the request-line overflow classifier.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidAuthority, overflowedInRequestLine, parseAbsoluteTarget, readRequestHead } from './hygiene.js';

describe('isValidAuthority', () => {
  it('accepts reg-names, IPv4, IPv6 literals, sub-delims and pct-encoding, with optional ports 0-65535', () => {
    for (const a of ['app.local', 'app.local:80', '10.0.0.1:0', '[::1]', '[::1]:65535', '[2001:db8::1]:8080', '[::ffff:1.2.3.4]', 'a-b_c~d', "x!$&'()*+,;=", 'a%41b', 'A.Example.COM']) {
      assert.equal(isValidAuthority(a), true, a);
    }
  });
  it('refuses userinfo, bad ports, empty hosts, unclosed literals, bad escapes and other characters', () => {
    for (const a of ['', 'user@evil', 'a:65536', 'a:99999', 'a:123456', 'a:80x', 'a:', ':80', 'a:80:81', '127.0.0.1:21006http:', '[::1', '[::1]x', '[::1]:', '[]', '[1.2.3.4]', '[::g]', 'a%4', 'a%zz', 'a b', 'a/b', 'a?b', 'a#b', 'é.local', 'a\tb']) {
      assert.equal(isValidAuthority(a), false, a);
    }
  });
  it('applies to absolute-form targets and Host headers', () => {
    assert.equal(parseAbsoluteTarget('http://127.0.0.1:21006http:/x'), undefined);
    assert.deepEqual(parseAbsoluteTarget('http://App.Local:8080/x?y'), { scheme: 'http', authority: 'app.local:8080', path: '/x?y' });
    assert.deepEqual(readRequestHead(['Host', 'user@evil'], '1.1', false, 100), { status: 400, message: 'invalid Host header "user@evil"' });
    assert.deepEqual(readRequestHead(['Host', 'a'], '0.9', false, 100), { status: 505, message: 'HTTP version 0.9 is not supported' });
    assert.deepEqual(readRequestHead(['Host', 'a'], '2.0', false, 100), { status: 505, message: 'HTTP version 2.0 is not supported' });
  });
});

describe('overflowedInRequestLine', () => {
  const at = (s: string): [Buffer, number] => [Buffer.from(s, 'latin1'), s.length];
  it('sees a request line in progress at the start of the read or after the last LF', () => {
    assert.equal(overflowedInRequestLine(...at(`GET /${'a'.repeat(100)}`)), true);
    assert.equal(overflowedInRequestLine(...at(`GET /a HTTP/1.1\r\nHost: x\r\n\r\nM-SEARCH /${'b'.repeat(100)}`)), true);
    assert.equal(overflowedInRequestLine(...at(`POST http://x/${'c'.repeat(100)}`)), true);
  });
  it('counts a header line, or a line begun in an earlier read, as headers', () => {
    assert.equal(overflowedInRequestLine(...at(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'c'.repeat(100)}`)), false);
    assert.equal(overflowedInRequestLine(...at('a'.repeat(100))), false);
    assert.equal(overflowedInRequestLine(...at(`GET / HTTP/1.1\r\n${'d'.repeat(100)}`)), false);
    assert.equal(overflowedInRequestLine(undefined, 10), false);
  });
});

describe('the hop marker in readRequestHead', () => {
  const head = (raw: string[]) => {
    const h = readRequestHead(['Host', 'a', ...raw], '1.1', false, 100);
    assert.ok(!('status' in h));
    return h;
  };
  it('x-sidecar-hop: 1 marks the request and is never kept for the upstream, in any case of its name', () => {
    const h = head(['X-Sidecar-Hop', '1', 'accept', '*/*']);
    assert.equal(h.hop, true);
    assert.deepEqual(h.headers, ['accept', '*/*']);
  });
  it('another value does not mark it, and is removed too; no marker, no mark', () => {
    const h = head(['x-sidecar-hop', 'yes', 'x-sidecar-hop', '0']);
    assert.equal(h.hop, false);
    assert.deepEqual(h.headers, []);
    assert.equal(head(['accept', '*/*']).hop, false);
  });
});
