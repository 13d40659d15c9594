// The well-known types' JSON forms (Timestamp, Duration, FieldMask, 64-bit integers, bytes).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  bytesFromJson,
  durationFromJson,
  durationToJson,
  fieldMaskFromJson,
  fieldMaskToJson,
  int64FromJson,
  JsonMappingError,
  lowerCamel,
  timestampFromJson,
  timestampToJson,
} from './wkt.js';

describe('Timestamp', () => {
  it('parses RFC 3339 with fractions and offsets, prints UTC with 0/3/6/9 digits', () => {
    assert.deepEqual(timestampFromJson('1970-01-01T00:00:00Z'), { seconds: '0', nanos: 0 });
    assert.deepEqual(timestampFromJson('2024-05-01T12:00:00.5Z'), { seconds: '1714564800', nanos: 500_000_000 });
    assert.deepEqual(timestampFromJson('2024-05-01T14:00:00+02:00'), { seconds: '1714564800', nanos: 0 });
    assert.deepEqual(timestampFromJson('0001-01-01T00:00:00Z'), { seconds: '-62135596800', nanos: 0 });
    assert.equal(timestampToJson(1714564800n, 0), '2024-05-01T12:00:00Z');
    assert.equal(timestampToJson(1714564800n, 500_000_000), '2024-05-01T12:00:00.500Z');
    assert.equal(timestampToJson(1714564800n, 1_000), '2024-05-01T12:00:00.000001Z');
    assert.equal(timestampToJson(1714564800n, 1), '2024-05-01T12:00:00.000000001Z');
    assert.equal(timestampToJson(-62135596800n, 0), '0001-01-01T00:00:00Z');
  });

  it('refuses what is not a timestamp, naming the field', () => {
    for (const bad of ['2024-05-01', '2024-13-01T00:00:00Z', '2024-02-30T00:00:00Z', '2024-05-01T25:00:00Z', '2024-05-01T00:00:00', 'now']) {
      assert.throws(() => timestampFromJson(bad, 'created'), (e: unknown) => e instanceof JsonMappingError && e.field === 'created', bad);
    }
  });
});

describe('Duration', () => {
  it('"1.5s" both ways, negative too', () => {
    assert.deepEqual(durationFromJson('1.5s'), { seconds: '1', nanos: 500_000_000 });
    assert.deepEqual(durationFromJson('-0.001s'), { seconds: '0', nanos: -1_000_000 });
    assert.deepEqual(durationFromJson('30s'), { seconds: '30', nanos: 0 });
    assert.equal(durationToJson(1n, 500_000_000), '1.500s');
    assert.equal(durationToJson(0n, -1_000_000), '-0.001s');
    assert.equal(durationToJson(30n, 0), '30s');
    assert.throws(() => durationFromJson('1.5'), JsonMappingError);
    assert.throws(() => durationFromJson('315576000001s'), /out of range/);
  });
});

describe('FieldMask', () => {
  it('lowerCamelCase paths in JSON, snake_case in the message', () => {
    assert.deepEqual(fieldMaskFromJson('user.displayName,photo'), { paths: ['user.display_name', 'photo'] });
    assert.deepEqual(fieldMaskFromJson(''), { paths: [] });
    assert.equal(fieldMaskToJson(['user.display_name', 'photo']), 'user.displayName,photo');
    assert.throws(() => fieldMaskFromJson('display_name'), /lowerCamelCase/);
  });
});

describe('64-bit integers, bytes, names', () => {
  it('strings and safe numbers accepted; range checked', () => {
    assert.equal(int64FromJson('9223372036854775807', false), '9223372036854775807');
    assert.equal(int64FromJson(-42, false), '-42');
    assert.equal(int64FromJson('18446744073709551615', true), '18446744073709551615');
    assert.equal(int64FromJson('1e3', false), '1000');
    assert.throws(() => int64FromJson('9223372036854775808', false), /out of range/);
    assert.throws(() => int64FromJson('-1', true), /out of range/);
    assert.throws(() => int64FromJson(2 ** 60, false), /as strings/);
    assert.throws(() => int64FromJson(1.5, false), /not an integer/);
    assert.throws(() => int64FromJson(true, false), /expected a int64/);
  });

  it('base64, standard or URL-safe', () => {
    assert.equal(bytesFromJson('aGk/Pz8=').toString(), 'hi???');
    assert.equal(bytesFromJson('aGk_Pz8').toString(), 'hi???');
    assert.throws(() => bytesFromJson('not base64!'), /base64/);
  });

  it('lowerCamelCase JSON names as protoc makes them', () => {
    assert.equal(lowerCamel('display_name'), 'displayName');
    assert.equal(lowerCamel('a_b_c'), 'aBC');
    assert.equal(lowerCamel('name'), 'name');
  });
});
