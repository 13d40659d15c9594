// Unit tests for config loading: errors with positions, suggestions, interpolation, units, defaults, generated docs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadDefaultConfig, parseConfig } from './load.js';
import { configJsonSchema } from './json-schema.js';
import { configReference } from './reference.js';
import { interpolate } from './interpolate.js';
import { parseDuration, parseSize } from './units.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function errorsOf(yaml: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(yaml, 'test.yaml', env);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

const minimal = `
listeners:
  - name: in
    port: 8000
    routes: [{ match: { prefix: / }, cluster: app }]
clusters:
  - name: app
    endpoints: ["127.0.0.1:8080"]
`;

describe('config', () => {
  it('accepts a minimal config and fills defaults', () => {
    const c = parseConfig(minimal, 'x.yaml', {});
    assert.equal(c.listeners[0]!.mode, 'reverse');
    assert.equal(c.listeners[0]!.routes[0]!.timeout, 15_000);
    assert.equal(c.clusters[0]!.lb.policy, 'round_robin');
    assert.equal(c.admin.address, '127.0.0.1');
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.listeners[0]));
  });

  it('the embedded default is valid and uses the sidecar ports', () => {
    const c = loadDefaultConfig({}).config;
    assert.deepEqual(c.listeners.map((l) => [l.name, l.port, l.mode]), [['inbound', 15006, 'reverse'], ['outbound', 15001, 'forward']]);
    assert.equal(c.admin.port, 15000);
    assert.deepEqual(c.clusters[0]!.endpoints, ['127.0.0.1:8080']);
  });

  it('reports unknown keys with line, column, path and a suggestion', () => {
    const errs = errorsOf(`listners: []\nadmin:\n  prot: 1\n`);
    assert.deepEqual(errs, [
      'test.yaml:1:1 listners: unknown key "listners"; did you mean "listeners"?',
      'test.yaml:3:3 admin.prot: unknown key "prot"; did you mean "port"?',
    ]);
  });

  it("suggests a filter config's own keys, not another filter's (the union branch its type names)", () => {
    const errs = errorsOf(`listeners:
  - name: in
    port: 1
    filters:
      - type: tracing
        config: { sampling_ration: 0.1, otlp: { endpont: "http://127.0.0.1:4318/v1/traces" }, always_sample: { error: true } }
    routes: [{ match: { prefix: / }, cluster: app }]
clusters: [{ name: app, endpoints: ["127.0.0.1:1"] }]
`);
    assert.ok(errs.some((e) => e.endsWith('listeners[0].filters[0].config.sampling_ration: unknown key "sampling_ration"; did you mean "sampling_ratio"?')), errs.join('\n'));
    assert.ok(errs.some((e) => e.endsWith('config.otlp.endpont: unknown key "endpont"; did you mean "endpoint"?')), errs.join('\n'));
    assert.ok(errs.some((e) => e.endsWith('config.always_sample.error: unknown key "error"; did you mean "errors"?')), errs.join('\n'));
    assert.ok(!errs.some((e) => /providers/.test(e)), errs.join('\n'));
  });

  it('reports every error at once, each with its position', () => {
    const errs = errorsOf(`
listeners:
  - name: in
    port: 99999
    mode: sideways
    routes:
      - match: { prefix: /x }
        cluster: app
        timeout: 5 seconds
clusters:
  - name: app
    endpoints: ["nohostport"]
`);
    assert.equal(errs.length, 4, errs.join('\n'));
    assert.match(errs[0]!, /^test\.yaml:4:11 listeners\[0\]\.port: /);
    assert.match(errs[1]!, /^test\.yaml:5:11 listeners\[0\]\.mode: expected one of "reverse", "forward"/);
    assert.match(errs[2]!, /^test\.yaml:9:18 listeners\[0\]\.routes\[0\]\.timeout: invalid duration "5 seconds"/);
    assert.match(errs[3]!, /^test\.yaml:12:17 clusters\[0\]\.endpoints\[0\]: expected host:port/);
  });

  it('checks cross references: unknown cluster with a suggestion, duplicate names', () => {
    const errs = errorsOf(minimal.replace('cluster: app', 'cluster: ap').replace('port: 8000', 'port: 8000\n  - name: in\n    port: 8001'));
    assert.ok(errs.some((e) => /listeners\[1\]\.name: duplicate listener "in"/.test(e)), errs.join('\n'));
    assert.ok(errs.some((e) => /routes\[0\]\.cluster: unknown cluster "ap"; did you mean "app"\?/.test(e)), errs.join('\n'));
  });

  it('rejects two routes with one name in a listener (their metric series would merge)', () => {
    const errs = errorsOf(minimal.replace('routes: [{ match: { prefix: / }, cluster: app }]', 'routes: [{ name: r1, match: { prefix: /a }, cluster: app }, { name: r1, match: { prefix: / }, cluster: app }]'));
    assert.match(errs.join('\n'), /listeners\[0\]\.routes\[1\]\.name: duplicate route "r1" in listener "in"/);
  });

  it('names the allowed redirect statuses, rejects a reversed status range and an unterminated ${', () => {
    const redirect = errorsOf(minimal.replace('cluster: app }', 'redirect: { status: 200 } }'));
    assert.match(redirect.join("\n"), /redirect\.status: expected one of 301, 302, 303, 307, 308/);
    const range = errorsOf(minimal.replace('endpoints: ["127.0.0.1:8080"]', 'endpoints: ["127.0.0.1:8080"]\n    health_check: { path: /h, expected_statuses: ["500-200"] }'));
    assert.match(range.join('\n'), /expected_statuses\[0\]: a range runs from low to high/);
    const env = errorsOf(minimal.replace('port: 8000', 'port: ${PORT'));
    assert.match(env.join('\n'), /test\.yaml:4:11 .*invalid \$\{\.\.\.\} reference/);
  });

  it('reports a type error and an unknown cluster in one pass', () => {
    const errs = errorsOf(minimal.replace('port: 8000', 'port: "abc"').replace('cluster: app }', 'cluster: nope }'));
    const text = errs.join('\n');
    assert.match(text, /listeners\[0\]\.port: expected number/);
    assert.match(text, /listeners\[0\]\.routes\[0\]\.cluster: unknown cluster "nope"/);
  });

  it('a route needs exactly one action', () => {
    const errs = errorsOf(minimal.replace('cluster: app }', 'cluster: app, direct_response: { status: 200 } }'));
    assert.match(errs.join('\n'), /exactly one action, found cluster and direct_response/);
  });

  it('rejects a header value or rewrite that would put a CR or LF on the wire', () => {
    const errs = errorsOf(
      minimal.replace(
        'cluster: app }',
        'cluster: app, host_rewrite: "a b", request_headers: { add: { x-a: "1\\r\\nx-injected: 1" }, set: { x-b: "\\0" } } }',
      ),
    );
    const text = errs.join('\n');
    assert.match(text, /test\.yaml:\d+:\d+ listeners\[0\]\.routes\[0\]\.request_headers\.add\.x-a: header values may hold visible ASCII, spaces, tabs and Latin-1 characters only: no control characters/);
    assert.match(text, /request_headers\.set\.x-b: header values may hold .* no control characters/);
    assert.match(text, /routes\[0\]\.host_rewrite: a host cannot contain spaces or control characters/);
  });

  it('reports YAML syntax errors with a position', () => {
    const errs = errorsOf('listeners:\n  - name: [unclosed\n');
    assert.deepEqual(errs, ['test.yaml:2:11 listeners[0].name: a list opened with [ is not closed: add the ] (or indent its continuation lines more than its key)']);
  });

  it('interpolates ${VAR} and ${VAR:-default}, keeping YAML types', () => {
    const c = parseConfig(minimal.replace('port: 8000', 'port: ${PORT:-8001}').replace('127.0.0.1:8080', '${APP}'), 'x.yaml', { APP: '10.1.1.1:9' });
    assert.equal(c.listeners[0]!.port, 8001);
    assert.deepEqual(c.clusters[0]!.endpoints, ['10.1.1.1:9']);
    const errs = errorsOf(minimal.replace('127.0.0.1:8080', '${MISSING}'));
    assert.match(errs[0]!, /^test\.yaml:8:18 clusters\[0\]\.endpoints\[0\]: environment variable MISSING is not set/);
  });

  it('interpolate maps output offsets back to the file', () => {
    const r = interpolate('a: ${LONG_VALUE}\nb: ${X}', { LONG_VALUE: 'abcdefghijklmnopqrstuvwxyz' });
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]!.offset, 'a: ${LONG_VALUE}\nb: '.length);
    assert.equal(interpolate('$${X}', {}).text, '${X}');
  });

  it('parses durations and sizes', () => {
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('5 minutes'), undefined);
    assert.equal(parseSize('64KiB'), 65_536);
    assert.equal(parseSize('1MB'), 1_000_000);
    assert.equal(parseSize('12'), 12);
    assert.equal(parseSize('1 GiB'), 1024 ** 3);
    assert.equal(parseSize('lots'), undefined);
  });

  it('reports each cross-reference error once (unknown cluster, duplicate port, duplicate cluster)', () => {
    const errs = errorsOf(`
listeners:
  - name: in
    port: 8000
    routes: [{ match: { prefix: / }, cluster: ap }]
  - name: in2
    port: 8000
clusters:
  - name: app
    endpoints: ["127.0.0.1:8080"]
  - name: app
    endpoints: ["127.0.0.1:8081"]
`);
    assert.deepEqual(errs, [
      'test.yaml:5:47 listeners[0].routes[0].cluster: unknown cluster "ap"; did you mean "app"?',
      'test.yaml:7:11 listeners[1].port: 127.0.0.1:8000 is already used by listener "in"; two servers cannot listen on one address and port',
      'test.yaml:11:11 clusters[1].name: duplicate cluster "app"',
    ]);
  });

  it('names a duplicate key and its path, and still checks the rest of the file', () => {
    const errs = errorsOf(`listeners: []
clusters:
  - name: app
    endpoints: ["127.0.0.1:8080"]
    name: b
    lb: { policy: nope }
`);
    assert.deepEqual(errs, [
      'test.yaml:5:5 clusters[0].name: duplicate key "name" (the later one would silently win)',
      'test.yaml:6:19 clusters[0].lb.policy: expected one of "round_robin", "least_request", "random", "ring_hash", not "nope"',
    ]);
  });

  it('describes YAML syntax errors in plain words at the line to fix, never in the library\'s words', () => {
    assert.deepEqual(errorsOf('listeners:\n\t- name: a\n'), ['test.yaml:2:1 listeners: a tab is used for indentation; YAML indents with spaces only']);
    assert.deepEqual(errorsOf('listeners:\n  - name: a\n     port: 1\n'), [
      'test.yaml:3:6 listeners[0].name: this line is indented deeper than the key above it, so it reads as part of that value; line it up with the keys above it',
    ]);
    assert.deepEqual(errorsOf('listeners:\n  - name: a\n  port: 1\n'), [
      'test.yaml:3:3 port: this key is not lined up with the keys above it; indent every key of one mapping by the same number of spaces',
    ]);
    assert.deepEqual(errorsOf('listeners:\n  - name: "a\n    port: 1\n'), ['test.yaml:2:11 listeners[0].name: this quoted string is not closed: add the closing "']);
    assert.deepEqual(errorsOf("admin: { address: 'x }\n"), ["test.yaml:1:19 admin.address: this quoted string is not closed: add the closing '"]);
    assert.deepEqual(errorsOf('admin:\n  address: *nope\n'), ['test.yaml:2:12 admin.address: alias *nope names no anchor: define &nope before it']);
    assert.deepEqual(errorsOf('a: 1\n---\nb: 2\n'), ['test.yaml:2:1 (root): the file holds more than one YAML document (a --- line); a config is a single document']);
    const all = [errorsOf('a: b: c\n'), errorsOf('a: @x\n'), errorsOf('a: "\\q"\n'), errorsOf('a: {x: 1\n'), errorsOf('a: *nope\n')].flat();
    assert.equal(all.length, 5, all.join('\n'));
    for (const e of all) assert.doesNotMatch(e, /Map keys|Tabs are not|Implicit keys|Nested mappings|must be sufficiently|Missing closing|Plain value|Invalid escape|Unresolved alias|YAML\.parse/, e);
  });

  it('a missing ${VAR} names the key using it and does not hide the other errors', () => {
    const errs = errorsOf('listeners:\n  - name: a\n    port: ${NOPE}\n    mode: sideways\n');
    assert.deepEqual(errs, [
      'test.yaml:3:11 listeners[0].port: environment variable NOPE is not set (use ${NOPE:-default} for a default)',
      'test.yaml:4:11 listeners[0].mode: expected one of "reverse", "forward", not "sideways"',
    ]);
  });

  it('suggests the closest enum value, as for keys', () => {
    const errs = errorsOf(`
clusters:
  - name: a
    endpoints: ["127.0.0.1:1"]
    lb: { policy: roundrobin }
listeners:
  - name: x
    port: 8000
    routes: [{ cluster: a, retry: { retry_on: [connect_failure] } }]
`);
    assert.match(errs[0]!, /lb\.policy: expected one of "round_robin", .*, not "roundrobin"; did you mean "round_robin"\?$/);
    assert.match(errs[1]!, /retry\.retry_on\[0\]: expected one of "connect-failure", .*, not "connect_failure"; did you mean "connect-failure"\?$/);
  });

  it('says numeric ranges in words', () => {
    const errs = errorsOf(`
listeners:
  - name: x
    port: 70000
    limits: { max_connections: 0 }
    routes: [{ cluster: a, retry: { max_retries: -1, retriable_status_codes: [700] } }]
clusters:
  - name: a
    endpoints: []
    panic_threshold: 101
`);
    assert.deepEqual(errs.map((e) => e.replace(/^test\.yaml:\d+:\d+ /, '')), [
      'listeners[0].port: port 70000 is above 65535',
      'listeners[0].limits.max_connections: max_connections 0 must be above 0',
      'listeners[0].routes[0].retry.max_retries: max_retries -1 is below 0',
      'listeners[0].routes[0].retry.retriable_status_codes[0]: retriable_status_codes[0] 700 is above 599',
      'clusters[0].endpoints: endpoints needs at least 1 entry',
      'clusters[0].panic_threshold: panic_threshold 101 is above 100',
    ]);
  });

  it('refuses what run would refuse: a listener on the admin port or on a taken address and port, all weights 0', () => {
    const base = (listeners: string, admin = ''): string[] =>
      errorsOf(`${admin}listeners:\n${listeners}clusters: [{ name: c, endpoints: ["127.0.0.1:1"] }]\n`);
    assert.deepEqual(base('  - { name: a, port: 15000 }\n'), [
      'test.yaml:2:22 listeners[0].port: 127.0.0.1:15000 is already used by the admin server (admin.port); two servers cannot listen on one address and port',
    ]);
    assert.deepEqual(base('  - { name: a, port: 9000 }\n', 'admin: { port: 9000, address: 0.0.0.0 }\n'), [
      'test.yaml:3:22 listeners[0].port: 127.0.0.1:9000 is already used by the admin server (admin.port); two servers cannot listen on one address and port',
    ]);
    assert.deepEqual(base('  - { name: a, port: 9000, address: 0.0.0.0 }\n  - { name: b, port: 9000 }\n'), [
      'test.yaml:3:22 listeners[1].port: 127.0.0.1:9000 is already used by listener "a"; two servers cannot listen on one address and port',
    ]);
    assert.deepEqual(base('  - { name: a, port: 9000 }\n  - { name: b, port: 9000, address: "::" }\n'), [
      'test.yaml:3:22 listeners[1].port: :::9000 is already used by listener "a"; two servers cannot listen on one address and port',
    ]);
    // Different addresses of one family, port 0, or a disabled admin server do not clash.
    assert.doesNotThrow(() => parseConfig('admin: { enabled: false }\nlisteners:\n  - { name: a, port: 15000 }\n  - { name: b, port: 9000, address: 127.0.0.2 }\n  - { name: c, port: 9000 }\n  - { name: d, port: 0 }\n  - { name: e, port: 0 }\n', 'x.yaml', {}));
    assert.deepEqual(
      base('  - name: a\n    port: 9000\n    routes: [{ weighted_clusters: [{ cluster: c, weight: 0 }, { cluster: c, weight: 0 }] }]\n'),
      ['test.yaml:4:35 listeners[0].routes[0].weighted_clusters: every weight is 0, so no cluster could be picked; give at least one cluster a weight above 0'],
    );
    assert.doesNotThrow(() => parseConfig('listeners:\n  - name: a\n    port: 9000\n    routes: [{ weighted_clusters: [{ cluster: c, weight: 0 }, { cluster: c, weight: 1 }] }]\nclusters: [{ name: c, endpoints: ["127.0.0.1:1"] }]\n', 'x.yaml', {}));
  });

  it('committed schema/sidecar.schema.json and docs/config.md match the schema (run `npm run gen`)', () => {
    assert.equal(readFileSync(path.join(root, 'schema/sidecar.schema.json'), 'utf8'), `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    assert.equal(readFileSync(path.join(root, 'docs/config.md'), 'utf8'), configReference());
  });
});
