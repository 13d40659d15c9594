// The mesh-hop config keys: clusters[].peer picks the protocol left out; impossible combinations fail with their path.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from './load.js';

const config = (cluster: string, listener = ''): string => `
listeners:
  - name: in
    port: 8000${listener}
    routes: [{ match: { prefix: / }, cluster: c }]
clusters:
  - name: c
    endpoints: ["127.0.0.1:8080"]
${cluster}`;

const tls = '    tls: { sni: b.example.org }\n';

function errorsOf(yaml: string): string[] {
  try {
    parseConfig(yaml, 'test.yaml', {});
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.message.split('\n');
  }
  assert.fail('expected a ConfigError');
}

describe('clusters[].peer', () => {
  it('defaults to app, whose protocol left out is http1', () => {
    const c = parseConfig(config(''), 'x.yaml', {}).clusters[0]!;
    assert.equal(c.peer, 'app');
    assert.equal(c.protocol, 'http1');
    assert.equal(parseConfig(config(tls), 'x.yaml', {}).clusters[0]!.protocol, 'http1');
  });

  it('peer: sidecar speaks h2c without tls and h2 with tls, unless protocol says otherwise (http1 allowed)', () => {
    assert.equal(parseConfig(config('    peer: sidecar\n'), 'x.yaml', {}).clusters[0]!.protocol, 'h2c');
    assert.equal(parseConfig(config(`    peer: sidecar\n${tls}`), 'x.yaml', {}).clusters[0]!.protocol, 'h2');
    assert.equal(parseConfig(config('    peer: sidecar\n    protocol: http1\n'), 'x.yaml', {}).clusters[0]!.protocol, 'http1');
    assert.equal(parseConfig(config(`    peer: sidecar\n    protocol: http1\n${tls}`), 'x.yaml', {}).clusters[0]!.protocol, 'http1');
  });

  it('an explicit protocol that contradicts tls is an error at its YAML path and line', () => {
    assert.deepEqual(errorsOf(config('    peer: sidecar\n    protocol: h2\n')), [
      'test.yaml:10:15 clusters[0].protocol: protocol h2 is HTTP/2 over TLS and needs tls; use h2c for cleartext HTTP/2 (or leave protocol out: peer: sidecar picks h2 with tls, h2c without)',
    ]);
    assert.deepEqual(errorsOf(config(`    peer: sidecar\n    protocol: h2c\n${tls}`)), [
      'test.yaml:10:15 clusters[0].protocol: h2c is cleartext HTTP/2; with tls use protocol h2 (or leave protocol out: peer: sidecar picks h2 with tls, h2c without)',
    ]);
  });

  it('refuses an unknown peer kind with the choices', () => {
    const [line] = errorsOf(config('    peer: mesh\n'));
    assert.match(line!, /^test\.yaml:9:11 clusters\[0\]\.peer: expected one of "app", "sidecar", not "mesh"/);
  });
});

describe('listeners[].hop_marker and routes[].timeout_header_allowed', () => {
  it('hop_marker defaults to trust; timeout_header_allowed is left unset (honoured only from a sidecar)', () => {
    const l = parseConfig(config(''), 'x.yaml', {}).listeners[0]!;
    assert.equal(l.hop_marker, 'trust');
    assert.equal(l.routes[0]!.timeout_header_allowed, undefined);
    assert.equal(parseConfig(config('', '\n    hop_marker: ignore'), 'x.yaml', {}).listeners[0]!.hop_marker, 'ignore');
  });

  it('refuses another hop_marker value', () => {
    const [line] = errorsOf(config('', '\n    hop_marker: always'));
    assert.match(line!, /^test\.yaml:5:17 listeners\[0\]\.hop_marker: expected one of "trust", "ignore", not "always"/);
  });
});
