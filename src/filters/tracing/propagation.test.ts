// Trace context parsing: W3C traceparent rules (version, lengths, all-zero ids, case) and both B3 forms.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatB3Single, formatTraceparent, parseB3Multi, parseB3Single, parseTraceparent, parseTracestate, readParent } from './propagation.js';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';

describe('traceparent', () => {
  it('reads version 00 with the sampled flag', () => {
    assert.deepEqual(parseTraceparent(`00-${T}-${S}-01`), { traceId: T, spanId: S, sampled: true, format: 'w3c' });
    assert.equal(parseTraceparent(`00-${T}-${S}-00`)?.sampled, false);
    // Only bit 0 is the sampled flag.
    assert.equal(parseTraceparent(`00-${T}-${S}-03`)?.sampled, true);
    assert.equal(parseTraceparent(`00-${T}-${S}-02`)?.sampled, false);
    assert.equal(parseTraceparent(`00-${T}-${S}-0a`)?.sampled, false);
    assert.equal(parseTraceparent(`00-${T}-${S}-0b`)?.sampled, true);
    assert.equal(parseTraceparent(`00-${T}-${S}-ff`)?.sampled, true);
    assert.equal(parseTraceparent(`00-${T}-${S}-0B`), undefined);
    assert.equal(parseTraceparent(` 00-${T}-${S}-01\t`)?.traceId, T, 'surrounding whitespace is not part of the value');
  });

  it('refuses what the W3C rules call invalid', () => {
    for (const bad of [
      undefined,
      '',
      `00-${'0'.repeat(32)}-${S}-01`, // all-zero trace id
      `00-${T}-${'0'.repeat(16)}-01`, // all-zero parent id
      `00-${T.toUpperCase()}-${S}-01`, // upper-case hex
      `ff-${T}-${S}-01`, // version ff
      `00-${T}-${S}-01-extra`, // version 00 has exactly four fields
      `00-${T.slice(1)}-${S}-01`,
      `00-${T}-${S.slice(1)}-01`,
      `00-${T}-${S}-1`,
      `00-${T}-${S}-zz`,
      `00_${T}_${S}_01`,
      `0x-${T}-${S}-01`,
    ]) {
      assert.equal(parseTraceparent(bad), undefined, String(bad));
    }
  });

  it('reads a later version by its first four fields', () => {
    assert.equal(parseTraceparent(`01-${T}-${S}-01-what-comes-next`)?.traceId, T);
    assert.equal(parseTraceparent(`01-${T}-${S}-01x`), undefined);
  });

  it('writes version 00', () => {
    assert.equal(formatTraceparent(T, S, true), `00-${T}-${S}-01`);
    assert.equal(formatTraceparent(T, S, false), `00-${T}-${S}-00`);
  });
});

describe('B3', () => {
  it('single header: trace-span[-sampled[-parent]], 64-bit trace ids padded, case-insensitive', () => {
    assert.deepEqual(parseB3Single(`${T}-${S}-1`), { traceId: T, spanId: S, sampled: true, format: 'b3' });
    assert.equal(parseB3Single(`${T}-${S}-0-${S}`)?.sampled, false);
    assert.equal(parseB3Single(`${T}-${S}-d`)?.sampled, true);
    assert.equal(parseB3Single(`${T}-${S}`)?.sampled, undefined);
    assert.equal(parseB3Single(`a3ce929d0e0e4736-${S}-1`)?.traceId, '0000000000000000a3ce929d0e0e4736');
    assert.equal(parseB3Single(`${T.toUpperCase()}-${S}-1`)?.traceId, T);
    for (const bad of ['0', '1', 'd', `${T}-${S}-x`, `${T}`, `${'0'.repeat(32)}-${S}-1`, `${T}-${S}-1-zz`, `${T}-${S}-1-${S}-x`]) assert.equal(parseB3Single(bad), undefined, bad);
  });

  it('multi header: X-B3-TraceId/SpanId/Sampled, Flags 1 means sampled', () => {
    const h = (o: Record<string, string>) => (n: string) => o[n];
    assert.deepEqual(parseB3Multi(h({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': '1' })), { traceId: T, spanId: S, sampled: true, format: 'b3multi' });
    assert.equal(parseB3Multi(h({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': 'false' }))?.sampled, false);
    assert.equal(parseB3Multi(h({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-flags': '1', 'x-b3-sampled': '0' }))?.sampled, true);
    assert.equal(parseB3Multi(h({ 'x-b3-traceid': T, 'x-b3-spanid': S }))?.sampled, undefined);
    assert.equal(parseB3Multi(h({ 'x-b3-traceid': T })), undefined);
    assert.equal(parseB3Multi(h({ 'x-b3-traceid': T, 'x-b3-spanid': S, 'x-b3-sampled': 'maybe' })), undefined);
  });

  it('writes the single form', () => assert.equal(formatB3Single(T, S, true), `${T}-${S}-1`));
});

describe('readParent', () => {
  it('prefers a valid traceparent, then b3, then X-B3-*; an invalid traceparent falls through', () => {
    const other = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    const all: Record<string, string> = { traceparent: `00-${T}-${S}-01`, b3: `${other}-${S}-1`, 'x-b3-traceid': other, 'x-b3-spanid': S };
    assert.equal(readParent((n) => all[n])?.format, 'w3c');
    all.traceparent = 'garbage';
    assert.equal(readParent((n) => all[n])?.format, 'b3');
    delete all.b3;
    assert.equal(readParent((n) => all[n])?.format, 'b3multi');
    assert.equal(readParent(() => undefined), undefined);
  });
});

describe('tracestate', () => {
  it('joins several tracestate headers into one list, drops empty members and optional whitespace', () => {
    assert.equal(parseTracestate(['a=1', 'b=2']), 'a=1,b=2');
    assert.equal(parseTracestate(['a=1 ,\tb=2,, ', 'vendor@tenant=x/y']), 'a=1,b=2,vendor@tenant=x/y');
    assert.equal(parseTracestate([]), undefined);
    assert.equal(parseTracestate([' , ']), undefined);
  });

  it('discards an invalid list whole: a malformed member, a repeated key, more than 32 members', () => {
    for (const bad of [['A=1'], ['a b=1'], ['=1'], ['a'], ['a=1', 'a=2'], ['a=x=y,b=\u00e9'], ['a=x\u0000']]) {
      assert.equal(parseTracestate(bad), undefined, JSON.stringify(bad));
    }
    const members = (n: number): string => Array.from({ length: n }, (_, i) => `k${i}=v`).join(',');
    assert.equal(parseTracestate([members(32)]), members(32), '32 members is the limit');
    assert.equal(parseTracestate([members(33)]), undefined);
  });

  it('cuts a list over 512 characters: members over 128 characters first, then from the end', () => {
    const long = `big=${'x'.repeat(200)}`;
    const small = Array.from({ length: 20 }, (_, i) => `k${i}=${'v'.repeat(20)}`);
    const out = parseTracestate([[long, ...small].join(',')])!;
    assert.ok(out.length <= 512, String(out.length));
    assert.ok(!out.includes('big='), 'the long member goes first');
    assert.ok(out.startsWith('k0='), 'the leftmost members stay');
    assert.equal(parseTracestate([`a=${'x'.repeat(255)}`, `b=${'y'.repeat(255)}`]), `a=${'x'.repeat(255)}`);
    assert.equal(parseTracestate([`a=${'x'.repeat(8000)}`]), undefined, 'a value over 256 characters is invalid');
  });
});
