// Access logs that log shippers ingest as they are: each format through a real sidecar, the filter, sensitive headers
// (never in any log, /debug/requests, the dashboard's data or /config), reload of the format, SIGUSR1 rotation.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSidecar } from '../helpers/sidecar.js';
import { httpRequest, rawExchange, sleep } from '../helpers/strict-net.js';
import { freePort, reply, startUpstream, type TestUpstream } from '../helpers/upstream.js';

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const read = (f: string): string => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return '';
  }
};

/** The value at an ECS dotted field name in a parsed (nested) line. */
const at = (j: unknown, field: string): unknown => field.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], j);

const SECRETS = ['Bearer-SECRET-1', 'sid=SECRET-2', 'SECRET-3', 'SECRET-4', 'SECRET-5', 'SECRET-6'];
/** A request carrying a credential in every place a log could pick one up. */
const secretHeaders = {
  authorization: 'Bearer-SECRET-1',
  cookie: 'sid=SECRET-2',
  'x-api-key': 'SECRET-3',
  'x-internal-auth': 'SECRET-4',
  'x-tenant': 'acme',
};

describe('access log formats through a real sidecar', () => {
  let up: TestUpstream;
  let refused: number;
  before(async () => {
    refused = await freePort();
    up = await startUpstream((req, res) => {
      if (req.url?.startsWith('/slow')) setTimeout(() => reply(res, 200, 'slow\n'), 150);
      else reply(res, 200, 'ok\n', { 'x-upstream': 'u1', 'set-cookie': 'sid=SECRET-5' });
    });
  });
  after(async () => {
    await up.close();
  });

  const listeners = (extra = ''): string => `
listeners:
  - name: in
    port: 0
${extra}    routes:
      - { name: down, match: { prefix: /down }, cluster: refused }
      - { name: app, match: { prefix: / }, cluster: app }
clusters:
  - { name: app, endpoints: ["127.0.0.1:${up.port}"] }
  - { name: refused, endpoints: ["127.0.0.1:${refused}"] }
`;

  it('json: chosen headers logged, sensitive ones (defaults and configured) redacted, everywhere', async () => {
    const sc = await startSidecar(`access_log:
  request_headers: [x-tenant, authorization, x-internal-auth, x-absent]
  response_headers: [x-upstream, set-cookie]
  sensitive_headers: [X-Internal-Auth]
${listeners('    filters: [{ type: header_mutation, config: { request: { set: { x-internal-auth: SECRET-6 } } } }]\n')}`);
    try {
      const r = await httpRequest(sc.ports.in!, { path: '/a?x=1', headers: secretHeaders });
      assert.equal(r.status, 200);
      assert.equal((await httpRequest(sc.ports.in!, { path: '/down', headers: secretHeaders })).status, 503);
      const [ok, down] = await sc.waitForAccessLog(2);
      assert.deepEqual(ok!.request_headers, { 'x-tenant': 'acme', authorization: '[redacted]', 'x-internal-auth': '[redacted]', 'x-absent': null });
      assert.deepEqual(ok!.response_headers, { 'x-upstream': 'u1', 'set-cookie': '[redacted]' });
      assert.equal(ok!.status, 200);
      assert.equal(down!.response_flag, 'UF');
      assert.deepEqual(down!.response_headers, { 'x-upstream': null, 'set-cookie': null }, 'the sidecar\'s own answer has neither');
      const debug = await (await fetch(`http://127.0.0.1:${sc.adminPort}/debug/requests?format=json`)).text();
      const story = await (await fetch(`http://127.0.0.1:${sc.adminPort}/debug/requests/${String(down!.request_id)}?format=json`)).text();
      const config = await (await fetch(`http://127.0.0.1:${sc.adminPort}/config`)).text();
      assert.match(debug, /"path":\s*"\/down"/, 'the recorder saw the requests');
      assert.match(config, /"x-internal-auth":\s*"\[redacted\]"/, '/config hides the configured sensitive header\'s edit');
      assert.equal(up.requests.at(-1)?.headers['x-internal-auth'], 'SECRET-6', 'the edit itself still applies');
      for (const s of SECRETS) {
        for (const [where, text] of [['stdout', sc.stdout()], ['stderr', sc.stderr()], ['/debug/requests', debug], ['story', story], ['/config', config]] as const) {
          assert.ok(!text.includes(s), `${s} in ${where}`);
        }
      }
    } finally {
      await sc.stop();
    }
  });

  it('json: the first line of a process, a request refused before routing, has every field', async () => {
    const sc = await startSidecar(`access_log: { format: json }\n${listeners()}`);
    try {
      // A malformed head: no route, no cluster, no endpoint (all empty), and the process's first line.
      await rawExchange(sc.ports.in!, ['GET /bad\\path HTTP/1.1\r\nHost: x\r\n\r\n'], 0, 500);
      const [first] = await sc.waitForAccessLog(1);
      assert.equal(first!.status, 400);
      assert.equal(first!.route, null, sc.stdout());
      assert.equal(first!.cluster, null);
      assert.equal(first!.upstream, null);
      assert.equal(first!.attempts, 0);
      assert.match(String(first!.duration_ms), /^\d+(\.\d{1,3})?$/, 'milliseconds with at most three decimals');
    } finally {
      await sc.stop();
    }
  });

  it('ecs: one nested line per request under ECS field names, parsed as Filebeat would take it', async () => {
    const sc = await startSidecar(`access_log: { format: ecs, service_name: shop, request_headers: [authorization] }\n${listeners()}`);
    try {
      await httpRequest(sc.ports.in!, { path: '/cart?id=7', headers: { ...secretHeaders, 'user-agent': 'ecs-test/1' } });
      await httpRequest(sc.ports.in!, { path: '/down' });
      await until(() => sc.stdout().trim().split('\n').length >= 2, 'two ECS lines');
      const lines = sc.stdout().trim();
      const [ok, down] = sc.stdout().trim().split('\n').map((l) => JSON.parse(l) as unknown);
      assert.ok(!lines.includes('SECRET'));
      assert.match(String(at(ok, '@timestamp')), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(typeof at(ok, 'ecs.version'), 'string');
      assert.equal(at(ok, 'http.request.method'), 'GET');
      assert.equal(at(ok, 'url.path'), '/cart');
      assert.equal(at(ok, 'url.query'), 'id=7');
      assert.equal(at(ok, 'url.domain'), '127.0.0.1');
      assert.equal(at(ok, 'http.response.status_code'), 200);
      assert.equal(at(ok, 'http.response.body.bytes'), 3);
      assert.equal(at(ok, 'http.request.body.bytes'), 0);
      assert.ok(Number.isInteger(at(ok, 'event.duration')) && (at(ok, 'event.duration') as number) > 0, 'nanoseconds');
      assert.equal(at(ok, 'source.address'), '127.0.0.1');
      assert.equal(at(ok, 'user_agent.original'), 'ecs-test/1');
      assert.equal(at(ok, 'service.name'), 'shop');
      assert.equal(at(ok, 'event.outcome'), 'success');
      assert.equal(at(ok, 'sidecar.route'), 'app');
      assert.equal(at(ok, 'sidecar.cluster'), 'app');
      assert.equal(at(ok, 'sidecar.attempts'), 1);
      assert.deepEqual(at(ok, 'sidecar.request_headers'), { authorization: '[redacted]' });
      assert.equal(at(down, 'event.outcome'), 'failure');
      assert.equal(at(down, 'http.response.status_code'), 503);
      assert.equal(at(down, 'sidecar.response_flag'), 'UF');
      assert.equal(typeof at(down, 'error.message'), 'string');
      // No dotted keys anywhere: every name is nested, as ECS documents it.
      const keys = (v: unknown): string[] => (typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.entries(v).flatMap(([k, x]) => [k, ...keys(x)]) : []);
      const dotted = keys(ok).filter((k) => k.includes('.'));
      assert.deepEqual(dotted, []);
    } finally {
      await sc.stop();
    }
  });

  it('text: an Envoy-style format string; a reload changes the format on the same file; SIGUSR1 reopens it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-text-log-'));
    const file = path.join(dir, 'access.log');
    const text = `access_log:
  path: ${file}
  format: text
  text_format: '%METHOD% %PATH% %RESPONSE_CODE% %RESPONSE_FLAGS% %ROUTE_NAME% %UPSTREAM_CLUSTER% %REQ(x-tenant)% %REQ(authorization)% %RESP(x-upstream)% %REQUEST_ID%'
${listeners()}`;
    const sc = await startSidecar(text);
    try {
      await httpRequest(sc.ports.in!, { path: '/t1', headers: { ...secretHeaders, 'x-request-id': 'req-t1' } });
      await httpRequest(sc.ports.in!, { path: '/down', headers: { 'x-request-id': 'req-t2' } });
      await until(() => read(file).split('\n').length >= 3, 'two text lines');
      const lines = read(file).trim().split('\n');
      assert.deepEqual(lines, ['GET /t1 200 - app app acme [redacted] u1 req-t1', 'GET /down 503 UF down refused - - - req-t2']);

      // Logrotate: rename, SIGUSR1, the next line goes to a new file at the path.
      renameSync(file, `${file}.1`);
      sc.proc.kill('SIGUSR1');
      await until(() => /access log reopened/.test(sc.stderr()), 'the reopen log line');
      await httpRequest(sc.ports.in!, { path: '/t3', headers: { 'x-request-id': 'req-t3' } });
      await until(() => read(file).includes('req-t3'), 'the line in the new file');
      assert.ok(!read(`${file}.1`).includes('req-t3'));

      // A reload with another format: the file stays open, new lines take the new format.
      sc.writeConfig(text.replace(/format: text\n  text_format: .*\n/, 'format: json\n'));
      sc.proc.kill('SIGHUP');
      await until(() => /config reloaded/.test(sc.stderr()), 'the reload');
      await httpRequest(sc.ports.in!, { path: '/t4', headers: { 'x-request-id': 'req-t4' } });
      await until(() => read(file).includes('req-t4'), 'the JSON line');
      const last = JSON.parse(read(file).trim().split('\n').at(-1)!) as Record<string, unknown>;
      assert.equal(last.path, '/t4');
      assert.equal(last.request_id, 'req-t4');
    } finally {
      await sc.stop();
    }
  });

  it('filter: only errors, only slow requests; errors plus a ratio of the rest, decided by request id', async () => {
    const sc = await startSidecar(`access_log: { filter: { only_errors: true } }\n${listeners()}`);
    try {
      for (let i = 0; i < 5; i++) await httpRequest(sc.ports.in!, { path: `/ok${i}` });
      await httpRequest(sc.ports.in!, { path: '/down' });
      await sc.waitForAccessLog(1);
      await sleep(250); // past the 100 ms flush: nothing else comes
      assert.deepEqual(sc.accessLog().map((l) => l.path), ['/down']);

      sc.writeConfig(`access_log: { filter: { slower_than: 100ms } }\n${listeners()}`);
      sc.proc.kill('SIGHUP');
      await until(() => sc.stderr().split('\n').filter((l) => /"config reloaded"/.test(l)).length >= 1, 'the reload');
      await httpRequest(sc.ports.in!, { path: '/fast' });
      await httpRequest(sc.ports.in!, { path: '/slow' });
      await sc.waitForAccessLog(2);
      await sleep(250);
      assert.deepEqual(sc.accessLog().map((l) => l.path), ['/down', '/slow']);

      // Together: every error, plus a quarter of the rest.
      sc.writeConfig(`access_log: { filter: { only_errors: true, ratio: 0.25 } }\n${listeners()}`);
      sc.proc.kill('SIGHUP');
      await until(() => sc.stderr().split('\n').filter((l) => /"config reloaded"/.test(l)).length >= 2, 'the second reload');
      for (let i = 0; i < 80; i++) await httpRequest(sc.ports.in!, { path: `/r${i}`, headers: { 'x-request-id': `ratio-${i}` } });
      const errorIds = Array.from({ length: 8 }, (_, i) => `err-${i}`);
      for (const id of errorIds) await httpRequest(sc.ports.in!, { path: '/down/again', headers: { 'x-request-id': id } });
      await sleep(300);
      assert.deepEqual(sc.accessLog().filter((l) => l.path === '/down/again').map((l) => l.request_id), errorIds, 'every error, sampled or not');
      const kept = sc.accessLog().filter((l) => String(l.path).startsWith('/r')).map((l) => String(l.request_id));
      const { idFraction } = await import('../../src/observability/access-sampling.js');
      const expected = Array.from({ length: 80 }, (_, i) => `ratio-${i}`).filter((id) => idFraction(id) < 0.25);
      assert.deepEqual(kept, expected, 'the ratio is decided by the request id');
      assert.ok(kept.length > 5 && kept.length < 40, `${kept.length}\n${sc.stdout()}\n${sc.stderr()}`);
    } finally {
      await sc.stop();
    }
  });
});
