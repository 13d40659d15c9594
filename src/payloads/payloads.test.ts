// Unit tests of the hop payload parts: schema fingerprints, descriptor sets (protobuf_bodies and transcode), the
// bounded body read, and the sending layer's 400 before anything leaves the host.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type * as protobuf from 'protobufjs';
import { HeaderList } from '../core/headers.js';
import { compileTranscoder } from '../filters/transcode/compile.js';
import { loadProtos } from '../filters/transcode/load-protos.js';
import { Counter } from '../observability/metrics.js';
import { readBounded } from './body.js';
import { pbMessageType } from './headers.js';
import { sendingLayer, type PbStats } from './protobuf-bodies.js';
import { compileBodySchema } from './protobuf-schema.js';
import { ROOT } from '../../test/helpers/sidecar.js';

const ORDERS = path.join(ROOT, 'examples/polyglot/orders.proto');
const THINGS = path.join(ROOT, 'test/fixtures/transcode/things.proto');
const cfg = (extra: Record<string, unknown> = {}) => ({ proto: [ORDERS], include: [], request: 'shop.v1.OrderRequest', response: 'shop.v1.Order', max_body: 1 << 20, emit_defaults: false, ...extra });

/** A FileDescriptorSet of .proto sources, written by protobufjs/ext/descriptor (as protoc --include_imports would). */
function descriptorSet(file: string): string {
  createRequire(import.meta.url)('protobufjs/ext/descriptor');
  const root = loadProtos([file], [], ROOT).root as protobuf.Root & { toDescriptor(syntax: string): { $type: protobuf.Type } };
  const set = root.toDescriptor('proto3');
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'fds-')), `${path.basename(file)}.pb`);
  writeFileSync(out, set.$type.encode(set as unknown as protobuf.Message).finish());
  return out;
}

describe('protobuf_bodies schema', () => {
  it('the fingerprint is stable across loads and changes with the message types', () => {
    const a = compileBodySchema(cfg());
    const b = compileBodySchema(cfg());
    assert.match(a.fingerprint, /^[0-9a-f]{16}$/);
    assert.equal(a.fingerprint, b.fingerprint);
    assert.notEqual(compileBodySchema(cfg({ request: undefined })).fingerprint, a.fingerprint);
  });

  it('an unknown message type names itself and the file', () => {
    assert.throws(() => compileBodySchema(cfg({ response: 'shop.v1.Nope' })), /response message type "shop.v1.Nope" is not defined in .*orders.proto/);
  });

  it('a descriptor set gives message types that read what the sources wrote', () => {
    const fromSet = compileBodySchema(cfg({ proto: [], descriptor_set: descriptorSet(ORDERS) }));
    const fromSrc = compileBodySchema(cfg());
    const msg = { customer_id: 'c1', items: [{ sku: 'a', quantity: 3, unit_price: { currency: 'EUR', units: '12' } }], note: 'n' };
    const bytes = fromSrc.request!.encode(fromSrc.request!.fromObject(msg)).finish();
    assert.deepEqual(fromSet.request!.toObject(fromSet.request!.decode(bytes), { longs: String }), fromSrc.request!.toObject(fromSrc.request!.decode(bytes), { longs: String }));
    assert.equal(fromSet.response!.fullName, '.shop.v1.Order');
  });

  it('the messageType parameter of a protobuf content type', () => {
    assert.equal(pbMessageType('application/x-protobuf; messageType=shop.v1.Order'), 'shop.v1.Order');
    assert.equal(pbMessageType('application/json'), undefined);
  });
});

describe('transcode from a descriptor set', () => {
  it('binds every method of the set at POST /pkg.Service/Method', () => {
    const t = compileTranscoder({ proto: [], descriptor_set: descriptorSet(THINGS), include: [], services: [], pass_through_unmatched: false, ignore_unknown_fields: false, emit_defaults: false, proto_field_names: false, max_request_body: 1 << 20, max_response_message: 1 << 20 });
    const posts = (t.byVerb.get('POST') ?? []).map((b) => b.method.grpcPath);
    assert.ok(posts.length > 0 && posts.every((p) => /^\/[A-Za-z0-9_.]+\/[A-Za-z0-9_]+$/.test(p)), posts.join(', '));
    assert.equal(t.status.fullName, '.google.rpc.Status');
  });
});

describe('bounded body read', () => {
  it('whole under the limit; over it, the same bytes stream on', async () => {
    const small = await readBounded(Readable.from([Buffer.from('ab'), Buffer.from('c')]), -1, 10);
    assert.ok('whole' in small && small.whole.toString() === 'abc');
    const big = await readBounded(Readable.from([Buffer.from('abcdef'), Buffer.from('ghij'), Buffer.from('kl')]), -1, 8);
    assert.ok('over' in big);
    const parts: Buffer[] = [];
    for await (const c of big.over as AsyncIterable<Buffer>) parts.push(c);
    assert.equal(Buffer.concat(parts).toString(), 'abcdefghijkl');
  });
});

describe('sending layer', () => {
  const stats = (): PbStats => ({ outcome: () => new Counter(), mismatches: new Counter(), jsonBytes: new Counter(), protobufBytes: new Counter() });
  it('answers 400 naming the field and never calls the hop', async () => {
    let called = 0;
    const svc = sendingLayer(compileBodySchema(cfg()), stats())(async () => {
      called++;
      return { status: 200, headers: new HeaderList(), body: null };
    });
    const body = Buffer.from(JSON.stringify({ customerId: 'c', shipTo: { lines: 'not a list' } }));
    const ctx = { requestId: 'r', route: 'x' } as unknown as Parameters<typeof svc>[0]['context'];
    const res = await svc({ method: 'POST', authority: 'a', path: '/', scheme: 'http', headers: new HeaderList(['content-type', 'application/json']), body: Readable.from([body]), contentLength: body.length, cancel: undefined as never, context: ctx });
    assert.equal(res.status, 400);
    assert.match(String(res.body), /shipTo\.lines/);
    assert.equal(called, 0);
  });
});
