// Unit tests for the request head: whatever the inputs, what goes on the wire is one well-formed request that Node's
// own strict parser reads back exactly, or nothing at all.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { announcedKeepAlive, framingFor, InvalidRequestHeadError, lastChunk, requestHead } from './head.js';

interface Parsed {
  method: string;
  url: string;
  headers: string[];
  messages: number;
}

/** Parses with llhttp in request mode, strictly; throws on a parse error. */
function parse(head: string): Parsed {
  const { HTTPParser, methods } = createRequire(import.meta.url)('_http_common') as {
    HTTPParser: { new (): Record<number, unknown> & { initialize(...a: unknown[]): void; execute(b: Buffer): unknown }; REQUEST: number };
    methods: string[];
  };
  const p = new HTTPParser();
  p.initialize(HTTPParser.REQUEST, {}, 0, 0);
  const out: Parsed = { method: '', url: '', headers: [], messages: 0 };
  p[1] = (h: string[]) => out.headers.push(...h);
  p[2] = (_a: number, _b: number, h: string[] | undefined, method: number, url: string) => {
    if (h) out.headers.push(...h);
    out.method = methods[method]!;
    out.url = url;
    out.messages++;
    return 0;
  };
  p[4] = () => {};
  const r = p.execute(Buffer.from(head, 'latin1'));
  if (typeof r !== 'number') throw r as Error;
  return out;
}

const tokenChar = fc.constantFrom(...'!#$%&\'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz'.split(''));
const token = fc.string({ unit: tokenChar, minLength: 1, maxLength: 12 });
const valueChar = fc.oneof(fc.integer({ min: 0x21, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff })).map((c) => String.fromCharCode(c));
// Values as they arrive from a parser: no leading or trailing whitespace (llhttp trims it).
const value = fc
  .tuple(fc.string({ unit: valueChar, maxLength: 6 }), fc.string({ unit: fc.oneof(valueChar, fc.constant(' '), fc.constant('\t')), maxLength: 10 }), fc.string({ unit: valueChar, maxLength: 6 }))
  .map(([a, b, c]) => (a && c ? a + b + c : a + c));

describe('upstream HTTP/1.1 request head', () => {
  it('round-trips through a strict parser: method, target, Host first, then the headers in order', () => {
    fc.assert(
      fc.property(fc.constantFrom('GET', 'POST', 'PATCH', 'M-SEARCH'), fc.array(fc.tuple(token, value), { maxLength: 40 }), (method, pairs) => {
        const raw = pairs.flatMap(([n, v]) => [n, v]);
        const head = requestHead(method, '/p?q=1', 'svc:8080', raw, '');
        const parsed = parse(head);
        assert.equal(parsed.messages, 1);
        assert.equal(parsed.method, method);
        assert.equal(parsed.url, '/p?q=1');
        const expected = ['host', 'svc:8080', ...pairs.filter(([n]) => n !== 'host' && n !== 'content-length').flatMap(([n, v]) => [n, v])];
        assert.deepEqual(parsed.headers, expected);
      }),
    );
  });

  it('refuses any control character in a header value, name, target or authority instead of writing it', () => {
    const control = fc.constantFrom('\r', '\n', '\r\n', '\0', '\x7f', '\x01');
    fc.assert(
      fc.property(value, control, value, fc.integer({ min: 0, max: 3 }), (a, c, b, where) => {
        const bad = a + c + b;
        const call = [
          () => requestHead('GET', '/', 'a', ['x-v', bad], ''),
          () => requestHead('GET', '/', 'a', [`x${c}y`, 'v'], ''),
          () => requestHead('GET', `/${bad}`, 'a', [], ''),
          () => requestHead('GET', '/', `a${c}`, [], ''),
        ][where]!;
        assert.throws(call, InvalidRequestHeadError);
      }),
    );
    assert.throws(() => requestHead('GET /x HTTP/1.1\r\n', '/', 'a', [], ''), InvalidRequestHeadError);
    assert.throws(() => requestHead('GET', '/a b', 'a', [], ''), InvalidRequestHeadError);
    assert.throws(() => requestHead('GET', '', 'a', [], ''), InvalidRequestHeadError);
  });

  it('sends exactly one framing: the declared length, chunked when unknown, and never a Content-Length from the list', () => {
    const raw = ['content-length', '999', 'transfer-encoding', 'chunked'];
    assert.equal(framingFor('POST', true, 5, raw), 'content-length: 5\r\n');
    assert.equal(framingFor('POST', true, -1, []), 'transfer-encoding: chunked\r\n');
    const sized = parse(requestHead('POST', '/', 'a', ['content-length', '999'], framingFor('POST', true, 5, [])));
    assert.deepEqual(sized.headers, ['host', 'a', 'content-length', '5']);
  });

  it('adds content-length: 0 to a bodiless POST, PUT or PATCH, or when the downstream declared one', () => {
    assert.equal(framingFor('POST', false, 0, []), 'content-length: 0\r\n');
    assert.equal(framingFor('PUT', false, -1, []), 'content-length: 0\r\n');
    assert.equal(framingFor('DELETE', false, 0, ['content-length', '0']), 'content-length: 0\r\n');
    assert.equal(framingFor('GET', false, -1, []), '');
  });

  it('ends a chunked body with its trailers, which a strict parser reads back as trailers', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(token, value), { maxLength: 40 }), (pairs) => {
        const fields = pairs.filter(([n]) => n !== 'content-length' && n !== 'transfer-encoding').flatMap(([n, v]) => [n, v]);
        const wire = requestHead('POST', '/', 'a', [], framingFor('POST', true, -1, [])) + '5\r\nhello\r\n' + lastChunk(fields);
        const parsed = parse(wire);
        assert.equal(parsed.messages, 1);
        assert.deepEqual(parsed.headers, ['host', 'a', 'transfer-encoding', 'chunked', ...fields]);
      }),
    );
    assert.throws(() => lastChunk(['x-sum', 'a\r\nx-evil: 1']), InvalidRequestHeadError);
  });

  it('reads the idle timeout an upstream announces in Keep-Alive', () => {
    assert.equal(announcedKeepAlive('timeout=5'), 5000);
    assert.equal(announcedKeepAlive('max=100, timeout=2'), 2000);
    assert.equal(announcedKeepAlive('Timeout = 7'), 7000);
    assert.equal(announcedKeepAlive('max=100'), undefined);
    assert.equal(announcedKeepAlive('xtimeout=5'), undefined);
  });
});
