// gRPC-JSON transcoding end to end: curl (the real binary) speaks JSON/REST to a sidecar route with a transcode filter,
// which calls a real grpc-js server (its .proto, with google.api.http rules, loaded by @grpc/proto-loader).
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { curl, parseCurlI } from '../helpers/client.js';
import { BIN, ROOT, startSidecar, type RunningSidecar } from '../helpers/sidecar.js';

const PROTO = path.join(ROOT, 'test/fixtures/transcode/things.proto');

type Obj = Record<string, unknown>;

/** Lets the streaming test hold the server between its first and its last message. */
let releaseStream: () => void = () => {};
let streamSentLast = false;
/** Messages the bulk stream has handed to grpc-js so far. */
let bulkSent = 0;

function thingsServer(): Promise<{ server: grpc.Server; port: number }> {
  const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [path.join(ROOT, 'protos')] });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { things: { v1: { Things: grpc.ServiceClientConstructor } } };
  const server = new grpc.Server();
  server.addService(pkg.things.v1.Things.service, {
    GetThing: (call: grpc.ServerUnaryCall<Obj, Obj>, cb: grpc.sendUnaryData<Obj>) => {
      const name = call.request['name'] as string;
      if (name.endsWith('/missing')) return cb({ code: grpc.status.NOT_FOUND, details: `thing ${name} not found` });
      if (name.endsWith('slow')) return void setTimeout(() => cb(null, { name }), 2000);
      cb(null, { name, display_name: `view=${String(call.request['view'] ?? '')}`, label: call.request['filter'], tags: [String(call.metadata.get('x-test-meta')[0] ?? '')] });
    },
    CreateThing: (call: grpc.ServerUnaryCall<Obj, Obj>, cb: grpc.sendUnaryData<Obj>) => {
      const t = (call.request['thing'] ?? {}) as Obj;
      cb(null, { ...t, name: `${String(call.request['parent'])}/things/${String(t['name'] ?? '')}`, note: { value: `mask=${JSON.stringify(call.request['mask'] ?? null)}` } });
    },
    UpdateThing: (call: grpc.ServerUnaryCall<Obj, Obj>, cb: grpc.sendUnaryData<Obj>) => cb(null, call.request),
    Echo: (call: grpc.ServerUnaryCall<Obj, Obj>, cb: grpc.sendUnaryData<Obj>) => cb(null, call.request),
    ListThings: (call: grpc.ServerUnaryCall<Obj, Obj>, cb: grpc.sendUnaryData<Obj>) => {
      const n = Number(call.request['count'] ?? 0);
      cb(null, { things: Array.from({ length: n }, (_, i) => ({ name: `${String(call.request['parent'])}/things/${i}`, tags: call.request['tags'] })), next_page_token: 'next' });
    },
    StreamThings: (call: grpc.ServerWritableStream<Obj, Obj>) => {
      const n = Number(call.request['count'] ?? 0);
      const blobSize = Number(call.request['blob_size'] ?? 0);
      if (blobSize > 0) {
        // The backpressure case: big messages, each written only when grpc-js says the stream has room.
        bulkSent = 0;
        const blob = Buffer.alloc(blobSize, 7);
        void (async () => {
          for (let i = 0; i < n; i++) {
            bulkSent++;
            if (!call.write({ name: `bulk-${i}`, blob })) await new Promise((r) => call.once('drain', r));
          }
          call.end();
        })();
        return;
      }
      const failAfter = Number(call.request['fail_after'] ?? 0);
      streamSentLast = false;
      const hold = new Promise<void>((resolve) => (releaseStream = resolve));
      void (async () => {
        for (let i = 0; i < n; i++) {
          if (failAfter > 0 && i === failAfter) {
            call.emit('error', { code: grpc.status.ABORTED, details: 'stream aborted by the test' });
            return;
          }
          if (i === n - 1) {
            // The last message waits for the client to have seen the first one (or a bound, so nothing hangs).
            await Promise.race([hold, new Promise((r) => setTimeout(r, 3000))]);
            streamSentLast = true;
          }
          call.write({ name: `thing-${i}`, size: String(1000 + i) });
        }
        call.end();
      })();
    },
    Fail: (call: grpc.ServerUnaryCall<Obj, Obj>, cb: grpc.sendUnaryData<Obj>) => {
      const code = Number(call.request['code']);
      const md = new grpc.Metadata();
      md.set('grpc-status-details-bin', encodeStatus(code, String(call.request['message'])));
      cb({ code, details: String(call.request['message']), metadata: md });
    },
    Files: (_call: grpc.ServerUnaryCall<Obj, Obj>, cb: grpc.sendUnaryData<Obj>) => cb(null, { stringValue: 'files' }) // protobufjs's bundled well-known types name fields in camelCase,
  });
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve({ server, port })));
  });
}

/** google.rpc.Status{code, message, details: [Any{type_url: google.protobuf.StringValue, value}]} by hand: tags 1, 2, 3. */
function encodeStatus(code: number, message: string): Buffer {
  const str = (tag: number, b: Buffer): Buffer => Buffer.concat([Buffer.from([(tag << 3) | 2, b.length]), b]);
  const inner = str(1, Buffer.from('detail-text'));
  const any = Buffer.concat([str(1, Buffer.from('type.googleapis.com/google.protobuf.StringValue')), str(2, inner)]);
  return Buffer.concat([Buffer.from([0x08, code]), str(2, Buffer.from(message)), str(3, any)]);
}

const config = (grpcPort: number, extra = ''): string => `
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: / }
        cluster: things
        filters:
          - type: transcode
            config:
              proto: [${JSON.stringify(PROTO)}]
              services: [things.v1.Things]${extra}
clusters:
  - { name: things, protocol: h2c, endpoints: ["127.0.0.1:${grpcPort}"], connect_timeout: 1s }
`;

describe('gRPC-JSON transcoding (curl -> sidecar -> grpc-js)', () => {
  let grpcServer: grpc.Server;
  let sidecar: RunningSidecar;
  let base: string;
  let port: number;

  before(async () => {
    const g = await thingsServer();
    grpcServer = g.server;
    sidecar = await startSidecar(config(g.port));
    port = sidecar.ports.in!;
    base = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    await sidecar?.stop();
    grpcServer?.forceShutdown();
  });

  it('GET with a path template ({name=shelves/*/things/*}), query parameters (nested too) and metadata', async () => {
    const r = await curl(['-i', '-H', 'x-test-meta: hello', `${base}/v1/shelves/s1/things/t%201?view=FULL&filter.key=k1&filter.value=v1`]);
    const res = parseCurlI(r.stdout);
    assert.equal(res.status, 200, r.stdout);
    assert.match(res.headers['content-type'] ?? '', /^application\/json/);
    assert.deepEqual(JSON.parse(res.body), { name: 'shelves/s1/things/t 1', displayName: 'view=FULL', tags: ['hello'], label: { key: 'k1', value: 'v1' } });
  });

  it('additional_bindings route to the same method', async () => {
    const r = await curl([`${base}/v1/things/abc`]);
    assert.equal((JSON.parse(r.stdout) as Obj)['name'], 'abc');
  });

  it('POST with body: "field", the rest from the path; FieldMask from a query parameter', async () => {
    const r = await curl(['-i', '-X', 'POST', '-H', 'content-type: application/json', '--data', '{"name":"n1","displayName":"One","howMany":3}', `${base}/v1/shelves/s9/things?mask=displayName,howMany`]);
    const res = parseCurlI(r.stdout);
    assert.equal(res.status, 200, r.stdout);
    const body = JSON.parse(res.body) as Obj;
    assert.equal(body['name'], 'shelves/s9/things/n1');
    assert.equal(body['displayName'], 'One');
    assert.equal(body['howMany'], 3);
    assert.equal(body['note'], 'mask={"paths":["display_name","how_many"]}');
  });

  it('int64, uint64, enum, Timestamp, Duration, wrappers, bytes, Struct round trip (body: "*", proto names accepted)', async () => {
    const sent = {
      name: 'shelves/a/things/b',
      size: '9007199254740993',
      big: '18446744073709551615',
      color: 'GREEN',
      created: '2024-05-01T12:00:00.250Z',
      ttl: '3.5s',
      priority: 0,
      note: 'n',
      blob: Buffer.from('hi there').toString('base64'),
      extra: { a: [1, 'x', null, { b: true }] },
      display_name: 'snake accepted',
      active: true,
    };
    const r = await curl(['-i', '-X', 'PATCH', '--data', JSON.stringify(sent), `${base}/v1/shelves/a/things/b`]);
    const res = parseCurlI(r.stdout);
    assert.equal(res.status, 200, r.stdout);
    const { display_name, ...rest } = sent;
    // Durations print with 0, 3, 6 or 9 fractional digits, as protobuf's own JSON printer does.
    assert.deepEqual(JSON.parse(res.body), { ...rest, ttl: '3.500s', displayName: display_name });
    // Numbers are accepted for 64-bit fields and enums; printed back as strings and names.
    const n = await curl(['-X', 'POST', '--data', '{"size": 42, "color": 1}', `${base}/things.v1.Things/Echo`]);
    assert.deepEqual(JSON.parse(n.stdout), { size: '42', color: 'RED' });
  });

  it('response_body sends one field of the response', async () => {
    const r = await curl([`${base}/v1/shelves/s2/things?count=2&tags=a&tags=b`]);
    assert.deepEqual(JSON.parse(r.stdout), [
      { name: 'shelves/s2/things/0', tags: ['a', 'b'] },
      { name: 'shelves/s2/things/1', tags: ['a', 'b'] },
    ]);
  });

  it('server streaming: a JSON array whose first element arrives before the server sends the last', async () => {
    const { firstChunk, sentLastAtFirstChunk, status, contentType, body } = await new Promise<{ firstChunk: string; sentLastAtFirstChunk: boolean; status: number; contentType: string; body: string }>((resolve, reject) => {
      const req = http.get(`${base}/v1/shelves/s3/things:stream?count=3`, (res) => {
        let body = '';
        let first: string | undefined;
        let sentLast = true;
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
          if (first === undefined) {
            first = c;
            sentLast = streamSentLast;
            releaseStream();
          }
        });
        res.on('end', () => resolve({ firstChunk: first ?? '', sentLastAtFirstChunk: sentLast, status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body }));
      });
      req.on('error', reject);
      req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    });
    assert.equal(status, 200);
    assert.equal(contentType, 'application/json');
    assert.equal(sentLastAtFirstChunk, false, 'the first bytes came only after the server had sent everything');
    assert.match(firstChunk, /^\[\{"name":"thing-0"/);
    assert.deepEqual(JSON.parse(body), [
      { name: 'thing-0', size: '1000' },
      { name: 'thing-1', size: '1001' },
      { name: 'thing-2', size: '1002' },
    ]);
  });

  it('server streaming is not buffered: a client that stops reading stops the server, and gets everything later', async () => {
    const total = 400;
    const size = 64 * 1024;
    const result = await new Promise<{ sentWhilePaused: number; elements: number; firstName: string }>((resolve, reject) => {
      const req = http.get(`${base}/v1/shelves/s3/things:stream?count=${total}&blobSize=${size}`, (res) => {
        res.pause();
        setTimeout(() => {
          const sentWhilePaused = bulkSent;
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const all = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Obj[];
            resolve({ sentWhilePaused, elements: all.length, firstName: String(all[0]?.['name']) });
          });
          res.resume();
        }, 1500);
      });
      req.on('error', reject);
      req.setTimeout(30_000, () => req.destroy(new Error('timed out')));
    });
    // 400 x 64 KiB is 25 MiB of messages (34 MiB of JSON): a paused client holds the server to a few MiB of buffers.
    assert.ok(result.sentWhilePaused < total * 0.6, `the server sent ${result.sentWhilePaused} of ${total} messages while the client read nothing`);
    assert.equal(result.elements, total);
    assert.equal(result.firstName, 'bulk-0');
  });

  it('server streaming as NDJSON when asked; a failure mid-stream is the last line', async () => {
    const r = await curl(['-i', '-H', 'accept: application/x-ndjson', `${base}/v1/shelves/s3/things:stream?count=2`]);
    const res = parseCurlI(r.stdout);
    assert.equal(res.headers['content-type'], 'application/x-ndjson');
    assert.equal(res.body, '{"name":"thing-0","size":"1000"}\n{"name":"thing-1","size":"1001"}\n');
    const f = await curl(['-H', 'accept: application/x-ndjson', `${base}/v1/shelves/s3/things:stream?count=4&failAfter=1`]);
    const lines = f.stdout.trim().split('\n').map((l) => JSON.parse(l) as Obj);
    assert.deepEqual(lines[0], { name: 'thing-0', size: '1000' });
    assert.deepEqual(lines[1], { error: { code: 10, message: 'stream aborted by the test', details: [] } });
    assert.equal(lines.length, 2);
  });

  it('gRPC status to HTTP status with a {code, message, details} body (details from grpc-status-details-bin)', async () => {
    const cases: Array<[number, number]> = [
      [3, 400], [5, 404], [6, 409], [7, 403], [16, 401], [8, 429], [9, 400], [12, 501], [14, 503], [4, 504], [13, 500], [1, 499], [2, 500],
    ];
    for (const [code, status] of cases) {
      const r = await curl(['-i', '-X', 'POST', '--data', JSON.stringify({ code, message: `failed with ${code}` }), `${base}/v1/fail`]);
      const res = parseCurlI(r.stdout);
      assert.equal(res.status, status, `grpc ${code}: ${r.stdout}`);
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      const body = JSON.parse(res.body) as Obj;
      assert.equal(body['code'], code);
      assert.equal(body['message'], `failed with ${code}`);
      assert.deepEqual(body['details'], [{ '@type': 'type.googleapis.com/google.protobuf.StringValue', value: 'detail-text' }]);
    }
    const nf = parseCurlI((await curl(['-i', `${base}/v1/shelves/s/things/missing`])).stdout);
    assert.equal(nf.status, 404);
    assert.deepEqual(JSON.parse(nf.body), { code: 5, message: 'thing shelves/s/things/missing not found', details: [] });
  });

  it('bad requests answer 400 naming the field; no binding answers 404; both as JSON', async () => {
    const unknown = parseCurlI((await curl(['-i', '-X', 'PATCH', '--data', '{"name":"x","label":{"nope":1}}', `${base}/v1/shelves/a/things/b`])).stdout);
    assert.equal(unknown.status, 400);
    assert.match((JSON.parse(unknown.body) as Obj)['message'] as string, /label\.nope: unknown field "nope"/);
    assert.equal(unknown.headers['x-sidecar-flag'], 'DPE');
    const badEnum = parseCurlI((await curl(['-i', '-X', 'POST', '--data', '{"color":"BLUE"}', `${base}/things.v1.Things/Echo`])).stdout);
    assert.equal(badEnum.status, 400);
    assert.match(badEnum.body, /color: \\"BLUE\\" is not a value of enum things\.v1\.Color/);
    const badQuery = parseCurlI((await curl(['-i', `${base}/v1/things/abc?bogus=1`])).stdout);
    assert.equal(badQuery.status, 400);
    assert.match(badQuery.body, /unknown query parameter \\"bogus\\"/);
    const notJson = parseCurlI((await curl(['-i', '-X', 'POST', '--data', '{', `${base}/things.v1.Things/Echo`])).stdout);
    assert.equal(notJson.status, 400);
    assert.match(notJson.body, /not valid JSON/);
    const none = parseCurlI((await curl(['-i', `${base}/v2/nothing`])).stdout);
    assert.equal(none.status, 404);
    assert.equal(none.headers['x-sidecar-flag'], 'NR');
    assert.equal((JSON.parse(none.body) as Obj)['code'], 5);
  });

  it('a custom verb with a ** template; google.protobuf.Value answers as plain JSON', async () => {
    const r = await curl(['-i', '-X', 'SEARCH', `${base}/v1/files/a/b/c`]);
    const res = parseCurlI(r.stdout);
    assert.equal(res.status, 200, r.stdout);
    assert.equal(res.body, '"files"\n');
  });

  it('a native gRPC client on the same route passes through untranscoded', async () => {
    const def = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, includeDirs: [path.join(ROOT, 'protos')] });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { things: { v1: { Things: grpc.ServiceClientConstructor } } };
    const client = new pkg.things.v1.Things(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const reply = await new Promise<Obj>((resolve, reject) => {
        (client as unknown as { Echo(req: Obj, opts: { deadline: number }, cb: (e: Error | null, r: Obj) => void): void }).Echo({ name: 'native', size: '5' }, { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r)));
      });
      assert.equal(reply['name'], 'native');
      assert.equal(reply['size'], '5');
    } finally {
      client.close();
    }
  });

  it('without an annotation, POST /package.Service/Method with a JSON body works', async () => {
    const r = await curl(['-X', 'POST', '--data', '{"name":"plain","tags":["x"]}', `${base}/things.v1.Things/Echo`]);
    assert.deepEqual(JSON.parse(r.stdout), { name: 'plain', tags: ['x'] });
  });
});

describe('transcoding: failures the sidecar answers itself, in JSON', () => {
  it('a route timeout: 504 JSON (DEADLINE_EXCEEDED) with the UT flag', async () => {
    const g = await thingsServer();
    const sidecar = await startSidecar(config(g.port).replace('        cluster: things\n', '        cluster: things\n        timeout: 300ms\n'));
    try {
      const res = parseCurlI((await curl(['-i', `http://127.0.0.1:${sidecar.ports.in!}/v1/things/slow`])).stdout);
      assert.equal(res.status, 504, res.body);
      assert.equal(res.headers['x-sidecar-flag'], 'UT');
      assert.equal((JSON.parse(res.body) as Obj)['code'], 4);
    } finally {
      await sidecar.stop();
      g.server.forceShutdown();
    }
  });

  it('an upstream that refuses connections: 503 JSON with the flag, not a gRPC trailers-only answer', async () => {
    const sidecar = await startSidecar(config(1).replace('listeners:\n  - name: in\n', 'listeners:\n  - name: in\n    grpc_local_answers: true\n'));
    try {
      const res = parseCurlI((await curl(['-i', `http://127.0.0.1:${sidecar.ports.in!}/v1/things/abc`])).stdout);
      assert.equal(res.status, 503);
      assert.equal(res.headers['x-sidecar-flag'], 'UF');
      assert.match(res.headers['content-type'] ?? '', /^application\/json/);
      const body = JSON.parse(res.body) as Obj;
      assert.equal(body['code'], 14);
      assert.equal(body['message'], 'upstream connection failure', 'the body names no address');
      assert.match(res.headers['x-sidecar-error'] ?? '', /refused/);
      assert.equal(res.headers['grpc-status'], undefined);
    } finally {
      await sidecar.stop();
    }
  });
});

function validate(yaml: string): Promise<{ code: number; out: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'transcode-validate-'));
  const file = path.join(dir, 'sidecar.yaml');
  writeFileSync(file, yaml);
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'validate', '-c', file], { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

describe('transcoding: invalid .proto files and rules fail validate with file:line', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'transcode-protos-'));
  const write = (name: string, text: string): string => {
    const f = path.join(dir, name);
    writeFileSync(f, text);
    return f;
  };
  const yaml = (proto: string, cluster = 'protocol: h2c, '): string => `
listeners:
  - name: in
    port: 0
    routes:
      - match: { prefix: / }
        cluster: c
        filters:
          - type: transcode
            config: { proto: [${JSON.stringify(proto)}] }
clusters:
  - { name: c, ${cluster}endpoints: ["127.0.0.1:1"] }
`;

  it('a syntax error names the file and line', async () => {
    const f = write('syntax.proto', 'syntax = "proto3";\npackage p;\nmessage A {\n  string x = 1\n  int32 y = 2;\n}\n');
    const r = await validate(yaml(f));
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /listeners\[0\]\.routes\[0\]\.filters\[0\]\.config\.proto/);
    assert.ok(r.out.includes(`${f}:5: illegal token 'int32'`), r.out);
  });

  it('a rule naming an unknown field names the file and the line of the rule', async () => {
    const f = write('rule.proto', [
      'syntax = "proto3";',
      'package p;',
      'import "google/api/annotations.proto";',
      'message R { string name = 1; }',
      'service S {',
      '  rpc Get(R) returns (R) {',
      '    option (google.api.http) = {',
      '      get: "/v1/{nmae}"',
      '    };',
      '  }',
      '}',
      '',
    ].join('\n'));
    const r = await validate(yaml(f));
    assert.equal(r.code, 2, r.out);
    assert.ok(r.out.includes(`${f}:8: p.S/Get: path variable {nmae}: no field "nmae" in p.R`), r.out);
  });

  it('an unknown type and a missing import name their lines', async () => {
    const t = write('type.proto', 'syntax = "proto3";\npackage p;\nmessage A {\n  Missing m = 1;\n}\n');
    const r = await validate(yaml(t));
    assert.ok(r.out.includes(`${t}:4: no such Type or Enum 'Missing'`), r.out);
    const i = write('import.proto', 'syntax = "proto3";\npackage p;\n\nimport "nowhere/x.proto";\n');
    const r2 = await validate(yaml(i));
    assert.ok(r2.out.includes(`${i}:4: import "nowhere/x.proto" not found`), r2.out);
  });

  it('an unknown service is reported at services, listing the known ones', async () => {
    const r = await validate(yaml(PROTO).replace('config: { proto: [', 'config: { services: [things.v1.Nope], proto: ['));
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /filters\[0\]\.config\.services: no service "things\.v1\.Nope" in the \.proto files \(services: things\.v1\.Things\)/);
  });

  it('prefix_rewrite on a transcoded route is refused', async () => {
    const r = await validate(yaml(PROTO).replace('        cluster: c\n', '        cluster: c\n        prefix_rewrite: /x/\n'));
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /routes\[0\]\.prefix_rewrite: prefix_rewrite does not combine with a transcode filter/);
  });

  it('a cluster that does not speak HTTP/2 is refused', async () => {
    const r = await validate(yaml(PROTO, ''));
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /transcode sends gRPC, which needs HTTP\/2: cluster "c" has protocol http1/);
  });

  it('startup with a bad .proto exits 2 naming it; a reload to one keeps the old config serving', async () => {
    const bad = write('bad-start.proto', 'syntax = "proto3";\nmessage {\n');
    const dir2 = mkdtempSync(path.join(os.tmpdir(), 'transcode-start-'));
    const file = path.join(dir2, 'sidecar.yaml');
    writeFileSync(file, `admin: { port: 0 }\n${yaml(bad)}`.replace('port: 0\n    routes', 'port: 0\n    routes'));
    const run = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'run', '-c', file], { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }));
    });
    assert.equal(run.code, 2, run.out);
    assert.ok(run.out.includes(`${bad}:2:`), run.out);

    const g = await thingsServer();
    const sc = await startSidecar(config(g.port));
    try {
      const url = `http://127.0.0.1:${sc.ports.in!}/v1/things/abc`;
      assert.equal((JSON.parse((await curl([url])).stdout) as Obj)['name'], 'abc');
      sc.writeConfig(config(g.port).replace(JSON.stringify(PROTO), JSON.stringify(bad)));
      process.kill(sc.proc.pid!, 'SIGHUP');
      const deadline = Date.now() + 8000;
      while (!sc.stderr().includes('bad-start.proto:2:') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.ok(sc.stderr().includes('bad-start.proto:2:'), sc.stderr());
      assert.equal((JSON.parse((await curl([url])).stdout) as Obj)['name'], 'abc', 'the old config still serves');
    } finally {
      await sc.stop();
      g.server.forceShutdown();
    }
  });

  it('a valid config passes', async () => {
    const r = await validate(yaml(PROTO));
    assert.equal(r.code, 0, r.out);
  });
});
