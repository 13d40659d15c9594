// Test helper: a throwaway CA and leaf certificates (ECDSA P-256, SPIFFE URI SAN, DNS SANs) written as PEM files.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface Ca {
  readonly cert: x509.X509Certificate;
  readonly keys: CryptoKeyPair;
  /** Path of the CA certificate PEM (a trust bundle). */
  readonly certFile: string;
}

export interface Leaf {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** Hex serial, upper case as Node's getPeerCertificate().serialNumber prints it. */
  readonly serial: string;
}

export interface LeafOptions {
  /** SPIFFE ID for the URI SAN. */
  readonly identity?: string;
  readonly dns?: readonly string[];
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** File name stem; default a counter. */
  readonly name?: string;
  /** Signed by itself rather than by the CA. */
  readonly selfSigned?: boolean;
}

let counter = 0;
const newKeys = (): Promise<CryptoKeyPair> => webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
const serial = (): string => (0x10 + Math.floor(Math.random() * 0x6f)).toString(16) + webcrypto.getRandomValues(Buffer.alloc(8)).toString('hex');

export class CertFactory {
  readonly dir: string;
  constructor(dir = mkdtempSync(path.join(os.tmpdir(), 'sidecar-certs-'))) {
    this.dir = dir;
  }

  async ca(name = 'ca', trustDomain = 'example.org'): Promise<Ca> {
    const keys = await newKeys();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: `CN=${trustDomain} test CA ${name}`,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + 30 * DAY),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const certFile = path.join(this.dir, `${name}.crt`);
    writeFileSync(certFile, cert.toString('pem'));
    return { cert, keys, certFile };
  }

  async leaf(ca: Ca, o: LeafOptions = {}): Promise<Leaf> {
    const keys = await newKeys();
    const names: x509.JsonGeneralName[] = [...(o.dns ?? []).map((value) => ({ type: 'dns' as const, value }))];
    if (o.identity) names.push({ type: 'url', value: o.identity });
    const sn = serial();
    const extensions = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
    ];
    const common = {
      serialNumber: sn,
      notBefore: o.notBefore ?? new Date(Date.now() - DAY),
      notAfter: o.notAfter ?? new Date(Date.now() + DAY),
      signingAlgorithm: ALG,
    };
    const cert = o.selfSigned
      ? await x509.X509CertificateGenerator.createSelfSigned({ ...common, name: `CN=${o.dns?.[0] ?? 'self-signed'}`, keys, extensions })
      : await x509.X509CertificateGenerator.create({
          ...common,
          subject: `CN=${o.dns?.[0] ?? o.identity ?? 'workload'}`,
          issuer: ca.cert.subject,
          publicKey: keys.publicKey,
          signingKey: ca.keys.privateKey,
          extensions: [...extensions, await x509.AuthorityKeyIdentifierExtension.create(ca.cert)],
        });
    const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
    const keyPem = x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
    const certPem = cert.toString('pem');
    const stem = o.name ?? `leaf${++counter}`;
    const certFile = path.join(this.dir, `${stem}.crt`);
    const keyFile = path.join(this.dir, `${stem}.key`);
    writeFileSync(certFile, certPem);
    writeFileSync(keyFile, keyPem, { mode: 0o600 });
    return { certFile, keyFile, certPem, keyPem, serial: sn.toUpperCase() };
  }
}

export const daysFromNow = (d: number): Date => new Date(Date.now() + d * DAY);
