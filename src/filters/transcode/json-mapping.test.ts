// The proto3 JSON mapping over the test fixture's messages: JSON in, encoded, decoded, JSON out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileTranscoder } from './compile.js';
import { messageFromJson, messageToJson, type MappingOptions } from './json-mapping.js';
import { transcodeSpec } from './schema.js';

const t = compileTranscoder(transcodeSpec.schema.parse({ proto: ['test/fixtures/transcode/things.proto'] }));
const thing = t.root.lookupType('things.v1.Thing');
const strict: MappingOptions = { ignoreUnknown: false, emitDefaults: false, protoNames: false };

const roundTrip = (json: unknown, opts: MappingOptions = strict): unknown => {
  const msg = thing.fromObject(messageFromJson(thing, json, opts));
  return messageToJson(thing, thing.decode(thing.encode(msg).finish()) as unknown as Record<string, unknown>, opts);
};

describe('proto3 JSON mapping', () => {
  it('round-trips scalars, enums, WKTs, maps of Struct, json_name', () => {
    const json = {
      name: 'n',
      size: '-9223372036854775808',
      big: '18446744073709551615',
      color: 'RED',
      created: '2024-05-01T12:00:00.123456Z',
      priority: 0,
      note: '',
      tags: ['a'],
      blob: 'AAEC',
      extra: { s: 'x', n: 1.5, b: false, z: null, l: [1, [2]], o: { p: {} } },
      ttl: '-1.000000001s',
      label: { key: 'k', value: 'v' },
      howMany: 7,
      active: true,
    };
    assert.deepEqual(roundTrip(json), json);
  });

  it('accepts proto names, numbers for enums and 64-bit integers; prints JSON names', () => {
    assert.deepEqual(roundTrip({ display_name: 'd', count: 2, color: 2, size: 5 }), { displayName: 'd', howMany: 2, color: 'GREEN', size: '5' });
  });

  it('prints defaults when asked, proto names when asked', () => {
    const out = roundTrip({ name: 'n' }, { ...strict, emitDefaults: true }) as Record<string, unknown>;
    assert.equal(out['size'], '0');
    assert.equal(out['color'], 'COLOR_UNSPECIFIED');
    assert.deepEqual(out['tags'], []);
    assert.equal(out['active'], false);
    assert.equal(out['created'], undefined, 'message fields stay absent');
    assert.deepEqual(roundTrip({ displayName: 'd' }, { ...strict, protoNames: true }), { display_name: 'd' });
  });

  it('refuses unknown fields and wrong types, naming the field path; ignores unknown fields when configured', () => {
    assert.throws(() => messageFromJson(thing, { label: { nope: 1 } }, strict), /^Error: label\.nope: unknown field "nope" in things\.v1\.Label$|label\.nope: unknown field/);
    assert.throws(() => messageFromJson(thing, { tags: 'a' }, strict), /tags: expected an array/);
    assert.throws(() => messageFromJson(thing, { tags: [1] }, strict), /tags\[0\]: expected a string/);
    assert.throws(() => messageFromJson(thing, { howMany: 2 ** 31 }, strict), /howMany: 2147483648 is out of range for int32/);
    assert.throws(() => messageFromJson(thing, { active: 'yes' }, strict), /active: expected true or false/);
    assert.throws(() => messageFromJson(thing, { color: 'BLUE' }, strict), /not a value of enum things\.v1\.Color/);
    assert.throws(() => messageFromJson(thing, [], strict), /expected an object/);
    assert.deepEqual(roundTrip({ name: 'n', nope: 1 }, { ...strict, ignoreUnknown: true }), { name: 'n' });
  });

  it('Any: packs a known type by @type, prints it back; well-known types inside Any use "value"', () => {
    const any = t.root.lookupType('google.protobuf.Any');
    const packed = any.fromObject(messageFromJson(any, { '@type': 'type.googleapis.com/things.v1.Label', key: 'k' }, strict));
    const back = messageToJson(any, any.decode(any.encode(packed).finish()) as unknown as Record<string, unknown>, strict);
    assert.deepEqual(back, { '@type': 'type.googleapis.com/things.v1.Label', key: 'k' });
    const ts = any.fromObject(messageFromJson(any, { '@type': 'type.googleapis.com/google.protobuf.Timestamp', value: '2024-05-01T12:00:00Z' }, strict));
    assert.deepEqual(messageToJson(any, any.decode(any.encode(ts).finish()) as unknown as Record<string, unknown>, strict), { '@type': 'type.googleapis.com/google.protobuf.Timestamp', value: '2024-05-01T12:00:00Z' });
    assert.throws(() => messageFromJson(any, { '@type': 'type.googleapis.com/no.Such' }, strict), /unknown message type/);
  });

  it('NaN and Infinity for floating point; wrappers as their plain values; FieldMask and Empty', () => {
    const req = t.root.lookupType('things.v1.CreateThingRequest');
    const plain = messageFromJson(req, { mask: 'displayName,label.key' }, strict);
    assert.deepEqual(plain, { mask: { paths: ['display_name', 'label.key'] } });
    const empty = t.root.lookupType('google.protobuf.Empty');
    assert.deepEqual(messageFromJson(empty, {}, strict), {});
    assert.throws(() => messageFromJson(empty, { a: 1 }, strict), /takes no fields/);
    const dbl = t.root.lookupType('google.protobuf.DoubleValue');
    const m = dbl.fromObject(messageFromJson(dbl, 'NaN', strict));
    assert.equal(messageToJson(dbl, dbl.decode(dbl.encode(m).finish()) as unknown as Record<string, unknown>, strict), 'NaN');
  });
});
