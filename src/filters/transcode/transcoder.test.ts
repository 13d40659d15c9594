// The transcode layer around a terminal service: binding choice, pass-through, body limits, request rewriting.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { Cancellation } from '../../core/cancel.js';
import { HeaderList } from '../../core/headers.js';
import type { HttpService, ProxyRequest, ProxyResponse } from '../../core/service.js';
import { compileTranscoder } from './compile.js';
import { frame } from './grpc-frame.js';
import { transcodeSpec } from './schema.js';
import { findBinding, transcodeLayer } from './transcoder.js';

const compiled = (extra: Record<string, unknown> = {}) => compileTranscoder(transcodeSpec.schema.parse({ proto: ['test/fixtures/transcode/things.proto'], ...extra }));

function request(method: string, path: string, body: string | null): ProxyRequest {
  return {
    method,
    authority: 'a.test',
    path,
    scheme: 'http',
    headers: new HeaderList(['accept', 'application/json', 'content-length', String(body?.length ?? 0)]),
    body: body === null ? null : Readable.from([Buffer.from(body)]),
    contentLength: body === null ? 0 : Buffer.byteLength(body),
    cancel: new Cancellation(),
    context: { requestId: 'id', startTime: 0, listener: 'l', downstreamAddress: '127.0.0.1', downstreamProtocol: 'HTTP/1.1', scheme: 'http', route: '', cluster: '', endpoint: '', attempts: 0, flag: undefined, error: undefined, deadline: Infinity, poolWait: undefined },
  } as unknown as ProxyRequest;
}

const json = (r: ProxyResponse): Record<string, unknown> => JSON.parse((r.body as Buffer).toString()) as Record<string, unknown>;

describe('transcode layer', () => {
  const t = compiled();
  const thing = t.root.lookupType('things.v1.Thing');

  it('picks the most specific binding: a verb template before a plain one, additional bindings too', () => {
    assert.equal(findBinding(t, 'GET', '/v1/shelves/s/things:stream')!.binding.method.grpcPath, '/things.v1.Things/StreamThings');
    assert.equal(findBinding(t, 'GET', '/v1/shelves/s/things')!.binding.method.grpcPath, '/things.v1.Things/ListThings');
    assert.equal(findBinding(t, 'GET', '/v1/things/x')!.binding.method.grpcPath, '/things.v1.Things/GetThing');
    assert.equal(findBinding(t, 'SEARCH', '/v1/files/a/b')!.binding.method.grpcPath, '/things.v1.Things/Files');
    assert.equal(findBinding(t, 'DELETE', '/v1/things/x'), undefined);
  });

  it('rewrites the request into one framed gRPC message and answers the decoded reply as JSON', async () => {
    let seen: { method: string; path: string; type: string | undefined; te: string | undefined; body: Buffer } | undefined;
    const terminal: HttpService = async (req) => {
      const chunks: Buffer[] = [];
      for await (const c of req.body as AsyncIterable<Buffer>) chunks.push(c);
      seen = { method: req.method, path: req.path, type: req.headers.get('content-type'), te: req.headers.get('te'), body: Buffer.concat(chunks) };
      const reply = frame(thing.encode(thing.fromObject({ name: 'back', size: '7' })).finish());
      return { status: 200, headers: new HeaderList(['content-type', 'application/grpc', 'x-app', 'yes']), body: reply, trailers: new HeaderList(['grpc-status', '0']) };
    };
    const res = await transcodeLayer(t)(terminal)(request('PATCH', '/v1/shelves/a/things/b', '{"displayName":"d"}'));
    assert.equal(seen!.method, 'POST');
    assert.equal(seen!.path, '/things.v1.Things/UpdateThing');
    assert.equal(seen!.type, 'application/grpc');
    assert.equal(seen!.te, 'trailers');
    assert.deepEqual(thing.toObject(thing.decode(seen!.body.subarray(5))), { name: 'shelves/a/things/b', display_name: 'd' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-app'), 'yes');
    assert.deepEqual(json(res), { name: 'back', size: '7' });
  });

  it('no binding: 404 JSON (NR), or on to the route untouched with pass_through_unmatched', async () => {
    const terminal: HttpService = async () => ({ status: 204, headers: new HeaderList(), body: null });
    const req = request('GET', '/elsewhere', null);
    const res = await transcodeLayer(t)(terminal)(req);
    assert.equal(res.status, 404);
    assert.equal(req.context.flag, 'NR');
    assert.equal(json(res)['code'], 5);
    const through = request('GET', '/elsewhere', null);
    assert.equal((await transcodeLayer(compiled({ pass_through_unmatched: true }))(terminal)(through)).status, 204);
    assert.equal(through.path, '/elsewhere');
  });

  it('a body over max_request_body: 413 JSON (TL), by Content-Length or by counting', async () => {
    const small = compiled({ max_request_body: 16 });
    const never: HttpService = async () => assert.fail('forwarded');
    const declared = await transcodeLayer(small)(never)(request('POST', '/things.v1.Things/Echo', '{"name":"a long enough name"}'));
    assert.equal(declared.status, 413);
    const counted = request('POST', '/things.v1.Things/Echo', '{"name":"a long enough name"}');
    counted.contentLength = -1;
    const res = await transcodeLayer(small)(never)(counted);
    assert.equal(res.status, 413);
    assert.equal(counted.context.flag, 'TL');
  });

  it('a unary answer whose trailers say an error: its HTTP status and JSON body', async () => {
    const terminal: HttpService = async () => ({
      status: 200,
      headers: new HeaderList(['content-type', 'application/grpc']),
      body: Buffer.alloc(0),
      trailers: new HeaderList(['grpc-status', '7', 'grpc-message', 'not%20yours']),
    });
    const res = await transcodeLayer(t)(terminal)(request('GET', '/v1/things/x', null));
    assert.equal(res.status, 403);
    assert.deepEqual(json(res), { code: 7, message: 'not yours', details: [] });
  });
});
