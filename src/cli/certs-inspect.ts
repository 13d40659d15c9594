// `sidecar certs inspect`: any PEM certificate in plain words (or JSON), and whether it verifies against a CA.
import { X509Certificate } from 'node:crypto';
import { describeValidity } from '../security/cert-ttl.js';
import { spiffeIdFromSubjectAltName } from '../security/spiffe-id.js';
import { CertsInputError, readInput } from './certs-input.js';

/** Exit 0, or 1 when a CA was given and the certificate does not verify against it. */
export function inspect(file: string | undefined, caFile: string | undefined, json: boolean): number {
  if (file === undefined) throw new CertsInputError('a certificate file is required: sidecar certs inspect FILE');
  const text = readInput(file, 'the certificate');
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text);
  if (!first) throw new CertsInputError(`${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  // node:crypto is enough to read a certificate; the x509 library is only needed to make one.
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(first[0]);
  } catch (err) {
    throw new CertsInputError(`${file} holds a PEM block that is not a certificate (${(err as Error).message})`);
  }
  const chainLength = text.match(/-----BEGIN CERTIFICATE-----/g)!.length;
  let verdict: { verified: boolean; words: string } | undefined;
  if (caFile !== undefined) {
    const caText = readInput(caFile, 'the CA certificate');
    let ca: X509Certificate;
    try {
      ca = new X509Certificate(caText);
    } catch (err) {
      throw new CertsInputError(`${caFile} is not a PEM certificate (${(err as Error).message})`);
    }
    const issued = cert.checkIssued(ca);
    const signed = issued && cert.verify(ca.publicKey);
    verdict = signed
      ? { verified: true, words: `verifies against ${caFile} (signed by ${oneLine(ca.subject)})` }
      : { verified: false, words: `does NOT verify against ${caFile}: ${notIssuedBy(cert, ca, issued)}` };
  }
  const now = Date.now();
  const validity = describeValidity(now, Date.parse(cert.validFrom), Date.parse(cert.validTo));
  const key = cert.publicKey;
  const d = key.asymmetricKeyDetails;
  const keyType = key.asymmetricKeyType === 'ec' ? `EC ${d?.namedCurve ?? ''}`.trim() : key.asymmetricKeyType === 'rsa' ? `RSA ${d?.modulusLength ?? ''}`.trim() : String(key.asymmetricKeyType);
  const sans = cert.subjectAltName ? cert.subjectAltName.split(/,\s*/) : [];
  const report = {
    file,
    subject: oneLine(cert.subject),
    issuer: oneLine(cert.issuer),
    self_signed: cert.checkIssued(cert),
    ca: cert.ca,
    subject_alt_names: sans,
    spiffe_id: spiffeIdFromSubjectAltName(cert.subjectAltName) ?? null,
    not_before: new Date(cert.validFrom).toISOString(),
    not_after: new Date(cert.validTo).toISOString(),
    valid_now: validity.valid,
    validity: validity.words,
    key_type: keyType,
    serial: cert.serialNumber.toLowerCase(),
    sha256_fingerprint: cert.fingerprint256,
    certificates_in_file: chainLength,
    ...(verdict ? { verifies_against_ca: verdict.verified, verification: verdict.words } : {}),
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    const lines = [
      `${file}: ${report.ca ? 'CA certificate' : 'certificate'}${chainLength > 1 ? ` (first of ${chainLength} in the file)` : ''}`,
      `  subject:      ${report.subject}`,
      `  issuer:       ${report.issuer}${report.self_signed ? ' (self-signed)' : ''}`,
      `  SANs:         ${sans.length ? sans.join(', ') : '(none)'}`,
      `  SPIFFE ID:    ${report.spiffe_id ?? '(none)'}`,
      `  validity:     ${report.not_before} to ${report.not_after}: ${report.validity}`,
      `  key:          ${keyType}`,
      `  serial:       ${report.serial}`,
      `  SHA-256:      ${report.sha256_fingerprint}`,
      ...(verdict ? [`  verification: ${verdict.words}`] : []),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  // A script can ask "does it verify?" by the exit code alone.
  return verdict && !verdict.verified ? 1 : 0;
}

/** Node prints distinguished names one attribute per line; one line reads better here. */
function oneLine(name: string): string {
  return name.split('\n').filter(Boolean).join(', ');
}

/** Why `cert` was not signed by `ca`, in plain words. */
function notIssuedBy(cert: X509Certificate, ca: X509Certificate, namesAndKeyIdsMatch: boolean): string {
  if (namesAndKeyIdsMatch) return 'the issuer matches by name but the signature does not (signed by another key)';
  if (cert.issuer === ca.subject) return `signed by another CA of the same name (${oneLine(ca.subject)}): the key identifiers differ`;
  return `issued by ${oneLine(cert.issuer)}, not by ${oneLine(ca.subject)}`;
}
