// /config redaction: credentials and key material never shown, where they live (file paths, variable names) shown.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redact } from './admin-server.js';

const PEM = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';

describe('redact', () => {
  it('hides tokens, passwords, secrets and keys; shows their file and env names', () => {
    const out = redact({
      admin: { token_file: '/run/secrets/admin-token', token_env: 'ADMIN_TOKEN', token: 'abc' },
      tls: { key: PEM, private_key: 'x', key_file: '/etc/tls/key.pem', cert_file: '/etc/tls/cert.pem', password: 'pw', client_secret: 's' },
      keys: ['k1'],
    }) as Record<string, Record<string, unknown>>;
    assert.deepEqual(out.admin, { token_file: '/run/secrets/admin-token', token_env: 'ADMIN_TOKEN', token: '[redacted]' });
    assert.deepEqual(out.tls, { key: '[redacted]', private_key: '[redacted]', key_file: '/etc/tls/key.pem', cert_file: '/etc/tls/cert.pem', password: '[redacted]', client_secret: '[redacted]' });
    assert.equal(out.keys, '[redacted]');
  });

  it('hides inline PEM private keys under any name, keeps ordinary values', () => {
    const out = redact({ headers: { 'x-note': PEM, 'x-tenant': 'acme' }, certificate: '-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----' }) as Record<string, Record<string, unknown> | string>;
    assert.deepEqual(out.headers, { 'x-note': '[redacted]', 'x-tenant': 'acme' });
    assert.match(String(out.certificate), /BEGIN CERTIFICATE/, 'a certificate is public');
  });

  it('hides header edits of the access log\'s sensitive headers, the defaults and the configured ones', async () => {
    const { sensitiveHeaderSet } = await import('../observability/sensitive-headers.js');
    const edits = { set: { 'x-api-key': 'k1', 'x-internal': 'i1', 'x-tenant': 'acme' } };
    assert.deepEqual(redact(edits, '', sensitiveHeaderSet()), { set: { 'x-api-key': '[redacted]', 'x-internal': 'i1', 'x-tenant': 'acme' } });
    assert.deepEqual(redact(edits, '', sensitiveHeaderSet(['X-Internal'])), { set: { 'x-api-key': '[redacted]', 'x-internal': '[redacted]', 'x-tenant': 'acme' } });
  });

  it("hides every header a tracing exporter sends to its collector, and a password in a URL", () => {
    const tracing = { type: 'tracing', config: { otlp: { endpoint: 'https://svc:PW-1@otel.example:4318/v1/traces', timeout: 5000, headers: { 'x-honeycomb-team': 'TEAM-KEY', 'x-scope-orgid': 'ORG-2', authorization: 'Bearer T' } } } };
    const out = redact(tracing) as { config: { otlp: { endpoint: string; headers: Record<string, string> } } };
    assert.deepEqual(out.config.otlp.headers, { 'x-honeycomb-team': '[redacted]', 'x-scope-orgid': '[redacted]', authorization: '[redacted]' });
    assert.equal(out.config.otlp.endpoint, 'https://[redacted]@otel.example:4318/v1/traces');
    assert.deepEqual(redact({ url: 'http://otel:4318/v1/traces' }), { url: 'http://otel:4318/v1/traces' }, 'a URL without credentials is shown');
  });
});
