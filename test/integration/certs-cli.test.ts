// `sidecar certs`: the real CLI makes a CA and workload certificates; openssl, node:crypto and a real mTLS handshake check them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it, before } from 'node:test';
import tls from 'node:tls';
import { BIN } from '../helpers/sidecar.js';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(file: string, args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
const certs = (...args: string[]): Promise<Result> => exec(process.execPath, [BIN, 'certs', ...args]);
const openssl = (...args: string[]): Promise<Result> => exec('openssl', args);

async function ok(p: Promise<Result>): Promise<Result> {
  const r = await p;
  assert.equal(r.code, 0, r.stderr);
  return r;
}

const mode = (file: string): number => statSync(file).mode & 0o777;
const pemBlocks = (text: string): string[] => text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];

describe('sidecar certs', () => {
  let dir: string;
  let ca: string;
  let web: string;
  let api: string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-certs-'));
    ca = path.join(dir, 'ca');
    web = path.join(dir, 'web');
    api = path.join(dir, 'api');
    const made = await ok(certs('init-ca', '--trust-domain', 'example.org', '--out', ca));
    assert.match(made.stdout, /CA for trust domain example\.org \(ec-p256, valid 365d\)/);
    await ok(certs('issue', '--ca', ca, '--identity', 'spiffe://example.org/ns/default/sa/web', '--out', web, '--dns', 'web.local', '--dns', 'localhost', '--ip', '127.0.0.1', '--ip', '::1'));
    await ok(certs('issue', '--ca', ca, '--identity', 'spiffe://example.org/ns/default/sa/api', '--out', api, '--ttl', '2h'));
  });

  it('init-ca: a self-signed ECDSA P-256 CA with CA constraints, cert-signing usages and the trust domain; the key is 0600', async () => {
    assert.equal(mode(path.join(ca, 'ca.key')), 0o600);
    const text = (await ok(openssl('x509', '-in', path.join(ca, 'ca.crt'), '-text', '-noout'))).stdout;
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign, CRL Sign/);
    assert.match(text, /URI:spiffe:\/\/example\.org\s/);
    assert.match(text, /NIST CURVE: P-256/);
    assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
    const cert = new X509Certificate(readFileSync(path.join(ca, 'ca.crt')));
    assert.equal(cert.ca, true);
    assert.equal(cert.checkIssued(cert), true);
    assert.equal(cert.verify(cert.publicKey), true);
    const lifetime = Date.parse(cert.validTo) - Date.now();
    assert.ok(lifetime > 364 * 86_400_000 && lifetime <= 365 * 86_400_000, `${cert.validTo}`);
    assert.ok(Date.parse(cert.validFrom) < Date.now() - 60_000, 'notBefore backdated for clock skew');
    await ok(openssl('pkey', '-in', path.join(ca, 'ca.key'), '-noout'));
  });

  it('issue: a workload certificate with the SPIFFE ID, DNS names, TLS usages, a random serial and the chain', async () => {
    assert.equal(mode(path.join(web, 'key.pem')), 0o600);
    const chain = pemBlocks(readFileSync(path.join(web, 'cert.pem'), 'utf8'));
    assert.equal(chain.length, 2, 'leaf then CA');
    assert.equal(chain[1]!.trim(), readFileSync(path.join(ca, 'ca.crt'), 'utf8').trim());
    assert.equal(readFileSync(path.join(web, 'ca.pem'), 'utf8').trim(), readFileSync(path.join(ca, 'ca.crt'), 'utf8').trim(), 'ca.pem is the trust bundle');

    const text = (await ok(openssl('x509', '-in', path.join(web, 'cert.pem'), '-text', '-noout'))).stdout;
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
    assert.match(text, /X509v3 Extended Key Usage:\s*\n\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /URI:spiffe:\/\/example\.org\/ns\/default\/sa\/web, DNS:web\.local, DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
    assert.match(text, /X509v3 Authority Key Identifier/);
    const verified = await ok(openssl('verify', '-CAfile', path.join(web, 'ca.pem'), path.join(web, 'cert.pem')));
    assert.match(verified.stdout, /cert\.pem: OK/);
    // As a server and as a client: openssl's purpose checks read the extended key usage.
    for (const purpose of ['sslserver', 'sslclient']) await ok(openssl('verify', '-purpose', purpose, '-CAfile', path.join(ca, 'ca.crt'), path.join(web, 'cert.pem')));

    const leaf = new X509Certificate(chain[0]!);
    const caCert = new X509Certificate(readFileSync(path.join(ca, 'ca.crt')));
    assert.equal(leaf.checkIssued(caCert), true);
    assert.equal(leaf.verify(caCert.publicKey), true);
    assert.equal(leaf.ca, false);
    assert.equal(leaf.subjectAltName, 'URI:spiffe://example.org/ns/default/sa/web, DNS:web.local, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    assert.equal(leaf.checkHost('web.local'), 'web.local');
    assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1');
    const from = Date.parse(leaf.validFrom);
    const to = Date.parse(leaf.validTo);
    assert.ok(from < Date.now() - 60_000 && from > Date.now() - 15 * 60_000, `notBefore a few minutes back: ${leaf.validFrom}`);
    assert.ok(to - Date.now() > 23.9 * 3_600_000 && to - Date.now() <= 24 * 3_600_000, `24h by default: ${leaf.validTo}`);
    const other = new X509Certificate(readFileSync(path.join(api, 'cert.pem')));
    assert.notEqual(leaf.serialNumber, other.serialNumber);
    assert.ok(Date.parse(other.validTo) - Date.now() <= 2 * 3_600_000, '--ttl 2h');
    assert.match(leaf.serialNumber, /^[0-9A-F]{32}$/, '128 random bits');
  });

  it('mutual TLS between node:tls server and client with the issued certificates; a foreign CA is refused', async () => {
    const material = (d: string) => ({ cert: readFileSync(path.join(d, 'cert.pem')), key: readFileSync(path.join(d, 'key.pem')), ca: readFileSync(path.join(d, 'ca.pem')) });
    const peers: string[] = [];
    const server = tls.createServer({ ...material(web), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (s) => {
      peers.push(s.getPeerCertificate().subjectaltname ?? '');
      s.end('hello over mTLS\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const answer = await new Promise<{ body: string; peer: string; authorized: boolean }>((resolve, reject) => {
        const c = tls.connect({ ...material(api), host: '127.0.0.1', port, servername: 'web.local' }, () => {
          let body = '';
          c.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ body, peer: c.getPeerCertificate().subjectaltname ?? '', authorized: c.authorized }));
        });
        c.once('error', reject);
        c.setTimeout(5000, () => c.destroy(new Error('handshake timed out')));
      });
      assert.equal(answer.body, 'hello over mTLS\n');
      assert.equal(answer.authorized, true);
      assert.match(answer.peer, /URI:spiffe:\/\/example\.org\/ns\/default\/sa\/web/);
      assert.deepEqual(peers, ['URI:spiffe://example.org/ns/default/sa/api']);

      // A client certificate from another CA (same trust domain name, other key) gets no answer.
      const rogueCa = path.join(dir, 'rogue-ca');
      const rogue = path.join(dir, 'rogue');
      await ok(certs('init-ca', '--trust-domain', 'example.org', '--out', rogueCa));
      await ok(certs('issue', '--ca', rogueCa, '--identity', 'spiffe://example.org/ns/default/sa/api', '--out', rogue));
      const refused = await new Promise<string>((resolve) => {
        const c = tls.connect({ cert: readFileSync(path.join(rogue, 'cert.pem')), key: readFileSync(path.join(rogue, 'key.pem')), ca: readFileSync(path.join(web, 'ca.pem')), host: '127.0.0.1', port, servername: 'web.local', maxVersion: 'TLSv1.2' });
        let body = '';
        c.setEncoding('utf8').on('data', (d: string) => (body += d));
        // TLS 1.2 so the refusal lands in the handshake (in 1.3 the client's side is done before the server judges it).
        c.once('error', (err) => resolve(`error: ${err.message}`));
        c.once('close', () => resolve(`closed: ${body}`));
        c.setTimeout(5000, () => c.destroy(new Error('timed out')));
      });
      assert.match(refused, /^error: .*(alert|before secure TLS connection was established)/, 'the rogue client is refused in the handshake');
      assert.equal(peers.length, 1, 'the server handled no request from the rogue client');

      // And the client refuses a server whose CA it does not trust.
      const distrust = await new Promise<string>((resolve) => {
        const c = tls.connect({ ...material(api), ca: readFileSync(path.join(rogue, 'ca.pem')), host: '127.0.0.1', port, servername: 'web.local' }, () => resolve('connected'));
        c.once('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
      });
      assert.match(distrust, /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('inspect: plain words and --json, and whether it verifies against a CA (exit 1 when not)', async () => {
    const text = (await ok(certs('inspect', path.join(web, 'cert.pem'), '--ca', path.join(ca, 'ca.crt')))).stdout;
    assert.match(text, /subject: +CN=web\.local/);
    assert.match(text, /issuer: +CN=sidecar mesh CA example\.org, O=example\.org/);
    assert.match(text, /SPIFFE ID: +spiffe:\/\/example\.org\/ns\/default\/sa\/web/);
    assert.match(text, /SANs: +URI:spiffe:\/\/example\.org\/ns\/default\/sa\/web, DNS:web\.local, DNS:localhost, IP Address:127\.0\.0\.1/);
    assert.match(text, /validity: .*valid now, expires in 2[34]h/);
    assert.match(text, /key: +EC prime256v1/);
    assert.match(text, /verification: verifies against/);
    const leaf = new X509Certificate(readFileSync(path.join(web, 'cert.pem')));
    assert.match(text, new RegExp(`SHA-256: +${leaf.fingerprint256}`));
    assert.match(text, new RegExp(`serial: +${leaf.serialNumber.toLowerCase()}`));

    const json = JSON.parse((await ok(certs('inspect', path.join(web, 'cert.pem'), '--json', '--ca', path.join(ca, 'ca.crt')))).stdout) as Record<string, unknown>;
    assert.equal(json.spiffe_id, 'spiffe://example.org/ns/default/sa/web');
    assert.equal(json.valid_now, true);
    assert.equal(json.verifies_against_ca, true);
    assert.equal(json.sha256_fingerprint, leaf.fingerprint256);
    assert.equal(json.certificates_in_file, 2);
    assert.equal(json.ca, false);

    const caJson = JSON.parse((await ok(certs('inspect', path.join(ca, 'ca.crt'), '--json'))).stdout) as Record<string, unknown>;
    assert.equal(caJson.ca, true);
    assert.equal(caJson.self_signed, true);
    assert.equal(caJson.spiffe_id, 'spiffe://example.org');

    // A certificate past its notAfter is reported as expired, in words and in --json.
    const brief = path.join(dir, 'brief');
    await ok(certs('issue', '--ca', ca, '--identity', 'spiffe://example.org/ns/default/sa/brief', '--out', brief, '--ttl', '1s'));
    await new Promise((r) => setTimeout(r, 2100));
    const expired = JSON.parse((await ok(certs('inspect', path.join(brief, 'cert.pem'), '--json'))).stdout) as Record<string, unknown>;
    assert.equal(expired.valid_now, false);
    assert.match(String(expired.validity), /^expired \d+s ago$/);
    assert.match((await ok(certs('inspect', path.join(brief, 'cert.pem')))).stdout, /validity: .*: expired \d+s ago/);

    const foreign = path.join(dir, 'foreign-ca');
    await ok(certs('init-ca', '--trust-domain', 'example.org', '--out', foreign));
    const no = await certs('inspect', path.join(web, 'cert.pem'), '--ca', path.join(foreign, 'ca.crt'));
    assert.equal(no.code, 1);
    assert.match(no.stdout, /verification: does NOT verify against .*foreign-ca\/ca\.crt: signed by another CA of the same name/);
  });

  it('other key types: ec-p384, rsa-2048, ed25519 CAs and workloads verify with openssl', async () => {
    for (const [type, pattern] of [['ec-p384', /NIST CURVE: P-384/], ['rsa-2048', /Public-Key: \(2048 bit\)/], ['ed25519', /Public Key Algorithm: ED25519/]] as const) {
      const c = path.join(dir, `ca-${type}`);
      const w = path.join(dir, `w-${type}`);
      await ok(certs('init-ca', '--trust-domain', 'example.org', '--out', c, '--key-type', type));
      await ok(certs('issue', '--ca', c, '--identity', 'spiffe://example.org/ns/x/sa/y', '--out', w, '--key-type', type));
      assert.match((await ok(openssl('x509', '-in', path.join(c, 'ca.crt'), '-text', '-noout'))).stdout, pattern, type);
      assert.match((await ok(openssl('verify', '-CAfile', path.join(w, 'ca.pem'), path.join(w, 'cert.pem')))).stdout, /OK/, type);
    }
  });

  it('bad input: a clear message and exit 2, and nothing is written', async () => {
    const out = path.join(dir, 'never');
    const junkCa = path.join(dir, 'junk-ca');
    mkdirSync(junkCa);
    writeFileSync(path.join(junkCa, 'ca.crt'), readFileSync(path.join(ca, 'ca.crt')));
    writeFileSync(path.join(junkCa, 'ca.key'), 'not a key\n');
    const lockedCa = path.join(dir, 'locked-ca');
    mkdirSync(lockedCa);
    writeFileSync(path.join(lockedCa, 'ca.crt'), readFileSync(path.join(ca, 'ca.crt')));
    writeFileSync(path.join(lockedCa, 'ca.key'), readFileSync(path.join(ca, 'ca.key')));
    chmodSync(path.join(lockedCa, 'ca.key'), 0o000);
    const asRoot = process.getuid?.() === 0; // root reads a 0000 file; then it reads as a valid key
    const issue = (...extra: string[]) => certs('issue', '--ca', ca, '--out', out, ...extra);
    const cases: Array<[string, Promise<Result>, RegExp]> = [
      ['not a SPIFFE ID', issue('--identity', 'https://example.org/web'), /--identity: "https:\/\/example\.org\/web" is not a valid SPIFFE ID: the scheme must be "spiffe"/],
      ['an upper-case trust domain', issue('--identity', 'spiffe://Example.org/web'), /upper-case letters/],
      ['a port', issue('--identity', 'spiffe://example.org:443/web'), /a ":" \(a port or userinfo\)/],
      ['a dot segment', issue('--identity', 'spiffe://example.org/ns/../web'), /"\.\." path segments are not allowed/],
      ['a query', issue('--identity', 'spiffe://example.org/web?x'), /a query/],
      ['no path', issue('--identity', 'spiffe://example.org'), /a workload identity needs a path/],
      ['another trust domain', issue('--identity', 'spiffe://other.org/ns/default/sa/web'), /is in trust domain "other\.org", but the CA in .* signs for "example\.org"/],
      ['a TTL beyond the CA', issue('--identity', 'spiffe://example.org/web', '--ttl', '400d'), /--ttl 400d is longer than the CA's remaining validity \(36[45]d/],
      ['a bad TTL', issue('--identity', 'spiffe://example.org/web', '--ttl', 'soon'), /--ttl expects a positive duration/],
      ['an unreadable key', certs('issue', '--ca', junkCa, '--identity', 'spiffe://example.org/web', '--out', out), /junk-ca\/ca\.key is not a readable private key/],
      ['a missing CA', certs('issue', '--ca', path.join(dir, 'nope'), '--identity', 'spiffe://example.org/web', '--out', out), /cannot read the CA certificate .*nope\/ca\.crt: no such file/],
      ['an unknown flag', certs('issue', '--ca', ca, '--identity', 'spiffe://example.org/web', '--out', out, '--bogus'), /unknown option "--bogus"/],
      ['a flag of another subcommand', certs('init-ca', '--trust-domain', 'example.org', '--out', out, '--identity', 'x'), /--identity is not an option of "sidecar certs init-ca"/],
      ['a bad trust domain', certs('init-ca', '--trust-domain', 'Example.org', '--out', out), /--trust-domain: the trust domain "Example\.org" has upper-case letters/],
      ['a bad key type', certs('init-ca', '--trust-domain', 'example.org', '--out', out, '--key-type', 'dsa'), /--key-type must be one of ec-p256, ec-p384, rsa-2048, ed25519/],
      ['a missing option', certs('issue', '--ca', ca, '--out', out), /--identity is required/],
      ['an unknown subcommand', certs('sign'), /unknown subcommand "sign"/],
      ['a subcommand named like an object property', certs('constructor'), /unknown subcommand "constructor"/],
      ['inspect of a non-certificate', certs('inspect', path.join(ca, 'ca.key')), /holds no PEM certificate/],
      ['a bad DNS name', issue('--identity', 'spiffe://example.org/web', '--dns', 'bad name'), /--dns "bad name" is not a DNS name/],
      ['a bad IP address', issue('--identity', 'spiffe://example.org/web', '--ip', '300.1.1.1'), /--ip "300\.1\.1\.1" is not an IPv4 or IPv6 address/],
    ];
    if (!asRoot) cases.push(['a key without read permission', certs('issue', '--ca', lockedCa, '--identity', 'spiffe://example.org/web', '--out', out), /cannot read the CA key .*: permission denied/]);
    for (const [what, pending, message] of cases) {
      const r = await pending;
      assert.equal(r.code, 2, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message, what);
      assert.match(r.stderr, /^sidecar certs/, what);
    }
    assert.equal(existsSync(out), false, 'no output directory made by a refused command');
  });

  it('existing files are kept unless --force, which replaces them with keys still 0600', async () => {
    const out = path.join(dir, 'again');
    await ok(certs('issue', '--ca', ca, '--identity', 'spiffe://example.org/ns/a/sa/b', '--out', out));
    const before = readFileSync(path.join(out, 'cert.pem'), 'utf8');
    const again = await certs('issue', '--ca', ca, '--identity', 'spiffe://example.org/ns/a/sa/b', '--out', out);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /cert\.pem, .*key\.pem, .*ca\.pem already exist; use --force to replace/);
    assert.equal(readFileSync(path.join(out, 'cert.pem'), 'utf8'), before);
    const ca2 = await certs('init-ca', '--trust-domain', 'example.org', '--out', ca);
    assert.equal(ca2.code, 2);
    assert.match(ca2.stderr, /ca\.crt, .*ca\.key already exist; use --force/);

    chmodSync(path.join(out, 'key.pem'), 0o644);
    await ok(certs('issue', '--ca', ca, '--identity', 'spiffe://example.org/ns/a/sa/b', '--out', out, '--force'));
    assert.notEqual(readFileSync(path.join(out, 'cert.pem'), 'utf8'), before);
    assert.equal(mode(path.join(out, 'key.pem')), 0o600);
  });
});
