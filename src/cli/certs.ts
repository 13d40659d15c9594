// `sidecar certs`: the mesh CA in the command line — init-ca, issue (SPIFFE workload certificates), inspect.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatTtl, parseTtl, ttlProblem } from '../security/cert-ttl.js';
import { parseSpiffeId, spiffeIdFromSubjectAltName, trustDomainProblem } from '../security/spiffe-id.js';
import { inspect } from './certs-inspect.js';
import { CertsInputError, readInput } from './certs-input.js';

export const CERTS_HELP = `Usage: sidecar certs <init-ca|issue|inspect> [options]

A small certificate authority for the mesh: a CA per trust domain, short-lived SPIFFE workload certificates
(URI SAN spiffe://<trust-domain>/ns/<namespace>/sa/<service>) and a readable view of any certificate.

  sidecar certs init-ca --trust-domain example.org --out DIR [--key-type T] [--ttl 365d] [--force]
      Writes DIR/ca.crt and DIR/ca.key (mode 0600): a self-signed CA for the trust domain.
  sidecar certs issue --ca DIR --identity spiffe://example.org/ns/default/sa/web --out DIR
                      [--ttl 24h] [--dns NAME ...] [--ip ADDRESS ...] [--key-type T] [--force]
      Writes DIR/cert.pem (the workload certificate, then the CA: the chain), DIR/key.pem (0600) and
      DIR/ca.pem (the trust bundle). The identity's trust domain must be the CA's.
  sidecar certs inspect FILE [--ca CAFILE] [--json]
      Subject, SANs, SPIFFE ID, issuer, validity, key type, SHA-256 fingerprint, serial; with --ca, whether
      it verifies against that CA (exit 1 when it does not).

Options:
  --key-type T   ec-p256 (default), ec-p384, rsa-2048 or ed25519
  --dns, --ip    extra SANs (repeatable): names and addresses peers may connect by, e.g. localhost, 127.0.0.1
  --ttl D        lifetime: 90d, 24h, 30m (init-ca default 365d, issue default 24h)
  --force        replace existing files (otherwise an existing file is an error)
  -h, --help     Show this help

Exit 0 on success; 1 when inspect --ca does not verify; 2 with a message on bad input (a missing or
unreadable file, an invalid SPIFFE ID, an identity of another trust domain, a TTL beyond the CA's validity,
an unknown option).
`;

const OPTIONS = {
  'trust-domain': { type: 'string' },
  out: { type: 'string' },
  'key-type': { type: 'string' },
  ttl: { type: 'string' },
  force: { type: 'boolean' },
  ca: { type: 'string' },
  identity: { type: 'string' },
  dns: { type: 'string', multiple: true },
  ip: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Which options each subcommand takes; any other is refused by name. */
const ALLOWED: Record<string, readonly string[]> = {
  'init-ca': ['trust-domain', 'out', 'key-type', 'ttl', 'force'],
  issue: ['ca', 'identity', 'out', 'ttl', 'dns', 'ip', 'key-type', 'force'],
  inspect: ['ca', 'json'],
};

export async function certsCommand(argv: readonly string[]): Promise<number> {
  const sub = argv[0] && !argv[0].startsWith('-') ? argv[0] : undefined;
  const fail = (message: string): number => {
    process.stderr.write(`sidecar certs${sub ? ` ${sub}` : ''}: ${message}\n`);
    return 2;
  };
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; strict: true; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv.slice(sub ? 1 : 0), options: OPTIONS, strict: true, allowPositionals: true });
  } catch (err) {
    // parseArgs explains "--" at length; the option's name is what matters here.
    const unknown = /Unknown option '([^']+)'/.exec((err as Error).message);
    return fail(unknown ? `unknown option "${unknown[1]}" (see sidecar certs --help)` : `${(err as Error).message} (see sidecar certs --help)`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(CERTS_HELP);
    return 0;
  }
  if (sub === undefined) return fail(`a subcommand is required: init-ca, issue or inspect\n\n${CERTS_HELP}`);
  // Own keys only: "constructor" or "toString" must not pass for a subcommand.
  const allowed = Object.hasOwn(ALLOWED, sub) ? ALLOWED[sub] : undefined;
  if (!allowed) return fail(`unknown subcommand "${sub}"; use init-ca, issue or inspect\n\n${CERTS_HELP}`);
  const stray = Object.keys(values).find((k) => k !== 'help' && !allowed.includes(k));
  if (stray) return fail(`--${stray} is not an option of "sidecar certs ${sub}" (it takes ${allowed.map((o) => `--${o}`).join(', ')})`);
  if (positionals.length > (sub === 'inspect' ? 1 : 0)) return fail(`unexpected argument "${positionals[sub === 'inspect' ? 1 : 0]}"`);
  try {
    switch (sub) {
      case 'init-ca':
        return await initCa(values);
      case 'issue':
        return await issue(values);
      default:
        return inspect(positionals[0], values.ca, values.json === true);
    }
  } catch (err) {
    if (err instanceof CertsInputError) return fail(err.message);
    const { CaLoadError } = await import('../security/ca.js');
    if (err instanceof CaLoadError) return fail(err.message);
    throw err;
  }
}

type Values = {
  'trust-domain'?: string | undefined;
  out?: string | undefined;
  'key-type'?: string | undefined;
  ttl?: string | undefined;
  force?: boolean | undefined;
  ca?: string | undefined;
  identity?: string | undefined;
  dns?: string[] | undefined;
  ip?: string[] | undefined;
  json?: boolean | undefined;
};

function required(values: Values, name: keyof Values, example: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new CertsInputError(`--${name} is required, e.g. --${name} ${example}`);
  return v;
}

function ttlOf(values: Values, fallback: number): number {
  if (values.ttl === undefined) return fallback;
  const ms = parseTtl(values.ttl);
  if (ms === undefined) throw new CertsInputError(`--ttl expects a positive duration such as 24h, 90m or 30d, got "${values.ttl}"`);
  return ms;
}

async function keyTypeOption(values: Values): Promise<import('../security/ca.js').KeyType> {
  const { isKeyType, KEY_TYPES } = await import('../security/ca.js');
  const t = values['key-type'] ?? 'ec-p256';
  if (!isKeyType(t)) throw new CertsInputError(`--key-type must be one of ${KEY_TYPES.join(', ')}, got "${t}"`);
  return t;
}

/** Writes every file or none: an existing one stops the lot unless --force. Keys get mode 0600. */
function writeOutputs(dir: string, files: ReadonlyArray<{ name: string; text: string; secret: boolean }>, force: boolean): string[] {
  const targets = files.map((f) => ({ ...f, file: path.join(dir, f.name) }));
  if (!force) {
    const existing = targets.filter((t) => existsSync(t.file)).map((t) => t.file);
    if (existing.length) throw new CertsInputError(`${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}; use --force to replace`);
  }
  try {
    mkdirSync(dir, { recursive: true });
    for (const t of targets) {
      const mode = t.secret ? 0o600 : 0o644;
      writeFileSync(t.file, t.text, { mode, flag: force ? 'w' : 'wx' });
      chmodSync(t.file, mode); // a replaced file keeps its old mode otherwise
    }
  } catch (err) {
    throw new CertsInputError(`cannot write to ${dir}: ${(err as Error).message}`);
  }
  return targets.map((t) => t.file);
}

async function initCa(values: Values): Promise<number> {
  const trustDomain = required(values, 'trust-domain', 'example.org');
  const problem = trustDomainProblem(trustDomain);
  if (problem) throw new CertsInputError(`--trust-domain: ${problem}`);
  const out = required(values, 'out', 'ca/');
  const ttlMs = ttlOf(values, 365 * 86_400_000);
  const keyType = await keyTypeOption(values);
  const { createCa } = await import('../security/ca.js');
  const ca = await createCa({ trustDomain, keyType, ttlMs, now: Date.now() });
  const written = writeOutputs(out, [{ name: 'ca.crt', text: ca.certPem, secret: false }, { name: 'ca.key', text: ca.keyPem, secret: true }], values.force === true);
  process.stdout.write(`CA for trust domain ${trustDomain} (${keyType}, valid ${formatTtl(ttlMs)}): ${written.join(', ')}\n`);
  return 0;
}

async function issue(values: Values): Promise<number> {
  const caDir = required(values, 'ca', 'ca/');
  const identity = required(values, 'identity', 'spiffe://example.org/ns/default/sa/web');
  const out = required(values, 'out', 'web/');
  const id = parseSpiffeId(identity, true);
  if (!id.ok) throw new CertsInputError(`--identity: ${id.error}`);
  const dnsNames = values.dns ?? [];
  for (const d of dnsNames) {
    if (!/^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(d)) throw new CertsInputError(`--dns "${d}" is not a DNS name`);
  }
  const ipAddresses = values.ip ?? [];
  for (const ip of ipAddresses) if (isIP(ip) === 0) throw new CertsInputError(`--ip "${ip}" is not an IPv4 or IPv6 address`);
  const ttlMs = ttlOf(values, 86_400_000);
  const keyType = await keyTypeOption(values);
  const certFile = path.join(caDir, 'ca.crt');
  const keyFile = path.join(caDir, 'ca.key');
  const { issueWorkload, loadCa } = await import('../security/ca.js');
  const ca = loadCa(readInput(certFile, 'the CA certificate'), readInput(keyFile, 'the CA key'), { cert: certFile, key: keyFile });
  const caDomain = spiffeIdFromSubjectAltName(ca.cert.subjectAltName);
  const caTrustDomain = caDomain ? parseSpiffeId(caDomain) : undefined;
  if (caTrustDomain?.ok && caTrustDomain.value.trustDomain !== id.value.trustDomain) {
    throw new CertsInputError(`--identity ${identity} is in trust domain "${id.value.trustDomain}", but the CA in ${caDir} signs for "${caTrustDomain.value.trustDomain}"`);
  }
  const now = Date.now();
  const tooLong = ttlProblem(ttlMs, now, Date.parse(ca.cert.validFrom), Date.parse(ca.cert.validTo));
  if (tooLong) throw new CertsInputError(tooLong);
  const issued = await issueWorkload({ ca, spiffeId: identity, dnsNames, ipAddresses, keyType, ttlMs, now });
  const written = writeOutputs(
    out,
    [
      { name: 'cert.pem', text: issued.chainPem, secret: false },
      { name: 'key.pem', text: issued.keyPem, secret: true },
      { name: 'ca.pem', text: ca.certPem, secret: false },
    ],
    values.force === true,
  );
  process.stdout.write(`${identity} (${keyType}, serial ${issued.serial}, valid ${formatTtl(ttlMs)}): ${written.join(', ')}\n`);
  return 0;
}
