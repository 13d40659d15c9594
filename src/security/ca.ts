// The mesh certificate authority: a CA certificate and key, and short-lived SPIFFE workload certificates signed by it.
// Loaded only by `sidecar certs` (never on the request path): @peculiar/x509 and reflect-metadata stay out of the proxy.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';

type Algorithm = webcrypto.Algorithm;
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type EcKeyGenParams = webcrypto.EcKeyGenParams;
type EcKeyImportParams = webcrypto.EcKeyImportParams;
type EcdsaParams = webcrypto.EcdsaParams;
type RsaHashedKeyGenParams = webcrypto.RsaHashedKeyGenParams;
type RsaHashedImportParams = webcrypto.RsaHashedImportParams;
import { BACKDATE_MS } from './cert-ttl.js';

x509.cryptoProvider.set(webcrypto);

export const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'] as const;
export type KeyType = (typeof KEY_TYPES)[number];
export const isKeyType = (s: string): s is KeyType => (KEY_TYPES as readonly string[]).includes(s);

interface Algorithms {
  generate: EcKeyGenParams | RsaHashedKeyGenParams | Algorithm;
  import: EcKeyImportParams | RsaHashedImportParams | Algorithm;
  sign: Algorithm | EcdsaParams;
}

function algorithms(type: KeyType): Algorithms {
  switch (type) {
    case 'ec-p256':
      return { generate: { name: 'ECDSA', namedCurve: 'P-256' }, import: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams };
    case 'ec-p384':
      return { generate: { name: 'ECDSA', namedCurve: 'P-384' }, import: { name: 'ECDSA', namedCurve: 'P-384' }, sign: { name: 'ECDSA', hash: 'SHA-384' } as EcdsaParams };
    case 'rsa-2048':
      return {
        generate: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } as RsaHashedKeyGenParams,
        import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as RsaHashedImportParams,
        sign: { name: 'RSASSA-PKCS1-v1_5' },
      };
    case 'ed25519':
      return { generate: { name: 'Ed25519' }, import: { name: 'Ed25519' }, sign: { name: 'Ed25519' } };
  }
}

/** A private key's type in our names, from a parsed key object (undefined for a type we do not sign with). */
export function keyTypeOf(key: KeyObject): KeyType | undefined {
  const d = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') return d?.namedCurve === 'prime256v1' ? 'ec-p256' : d?.namedCurve === 'secp384r1' ? 'ec-p384' : undefined;
  if (key.asymmetricKeyType === 'rsa') return d?.modulusLength === 2048 ? 'rsa-2048' : undefined;
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  return undefined;
}

export interface Pem {
  readonly certPem: string;
  readonly keyPem: string;
}

async function generateKeys(type: KeyType): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(algorithms(type).generate as EcKeyGenParams, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function keyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** A positive 128-bit serial (RFC 5280: at most 20 octets, non-negative; high bit clear so it needs no sign octet). */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

export interface CaOptions {
  readonly trustDomain: string;
  readonly keyType: KeyType;
  readonly ttlMs: number;
  readonly now: number;
}

/** A self-signed CA for a trust domain: CA basic constraints, keyCertSign + cRLSign, the trust domain as URI SAN. */
export async function createCa(opts: CaOptions): Promise<Pem> {
  const keys = await generateKeys(opts.keyType);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=sidecar mesh CA ${opts.trustDomain}, O=${opts.trustDomain}`,
    notBefore: new Date(opts.now - BACKDATE_MS),
    notAfter: new Date(opts.now + opts.ttlMs),
    keys,
    signingAlgorithm: algorithms(opts.keyType).sign,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${opts.trustDomain}` }]),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyPem(keys.privateKey) };
}

/** A CA read from disk: the parsed certificate and its private key, checked to belong together. */
export interface LoadedCa {
  readonly cert: X509Certificate;
  readonly certPem: string;
  readonly key: KeyObject;
  readonly keyType: KeyType;
}

export class CaLoadError extends Error {}

/** Parses and checks a CA certificate and key; throws CaLoadError with the problem in plain words. */
export function loadCa(certPem: string, keyPemText: string, where: { cert: string; key: string }): LoadedCa {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new CaLoadError(`${where.cert} is not a PEM certificate (${(err as Error).message})`);
  }
  if (!cert.ca) throw new CaLoadError(`${where.cert} is not a CA certificate (basicConstraints CA:FALSE)`);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPemText);
  } catch (err) {
    throw new CaLoadError(`${where.key} is not a readable private key (${(err as Error).message})`);
  }
  const keyType = keyTypeOf(key);
  if (!keyType) throw new CaLoadError(`${where.key} is a ${key.asymmetricKeyType} key of a kind the CA cannot sign with; use ${KEY_TYPES.join(', ')}`);
  const spki = (k: KeyObject): string => k.export({ type: 'spki', format: 'der' }).toString('hex');
  if (spki(createPublicKey(key)) !== spki(cert.publicKey)) throw new CaLoadError(`${where.key} is not the private key of ${where.cert} (their public keys differ)`);
  return { cert, certPem: certPem.trim() + '\n', key, keyType };
}

export interface IssueOptions {
  readonly ca: LoadedCa;
  readonly spiffeId: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses?: readonly string[] | undefined;
  readonly keyType: KeyType;
  readonly ttlMs: number;
  readonly now: number;
}

export interface Issued extends Pem {
  /** Leaf then CA: what a TLS server or client presents. */
  readonly chainPem: string;
  readonly serial: string;
}

/** A workload (X509-SVID) certificate: URI SAN = the SPIFFE ID, DNS and IP SANs, digitalSignature, serverAuth + clientAuth. */
export async function issueWorkload(opts: IssueOptions): Promise<Issued> {
  const keys = await generateKeys(opts.keyType);
  const caAlgs = algorithms(opts.ca.keyType);
  const pkcs8 = opts.ca.key.export({ type: 'pkcs8', format: 'der' });
  const signingKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, caAlgs.import as EcKeyImportParams, false, ['sign']);
  const caCert = new x509.X509Certificate(opts.ca.certPem);
  const serial = randomSerial();
  const names: x509.JsonGeneralName[] = [{ type: 'url', value: opts.spiffeId }, ...opts.dnsNames.map((d): x509.JsonGeneralName => ({ type: 'dns', value: d })),
    ...(opts.ipAddresses ?? []).map((ip): x509.JsonGeneralName => ({ type: 'ip', value: ip })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${opts.dnsNames[0] ?? opts.spiffeId.slice(opts.spiffeId.lastIndexOf('/') + 1)}`,
    issuer: caCert.subject,
    notBefore: new Date(opts.now - BACKDATE_MS),
    notAfter: new Date(opts.now + opts.ttlMs),
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: caAlgs.sign,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | (opts.keyType === 'rsa-2048' ? x509.KeyUsageFlags.keyEncipherment : 0), true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      // SPIFFE X509-SVID: the SAN is critical when the subject carries no identity of its own; ours names the leaf only.
      new x509.SubjectAlternativeNameExtension(names, false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
    ],
  });
  const certPem = cert.toString('pem') + '\n';
  return { certPem, keyPem: await keyPem(keys.privateKey), chainPem: certPem + opts.ca.certPem, serial };
}
