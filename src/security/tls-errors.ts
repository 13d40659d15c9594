// Plain reasons for failed TLS handshakes and certificate checks, from OpenSSL's and Node's error codes.

export type TlsFailureReason =
  | 'expired'
  | 'not_yet_valid'
  | 'unknown_ca'
  | 'self_signed'
  | 'name_mismatch'
  | 'identity_mismatch'
  | 'no_client_cert'
  | 'not_tls'
  | 'protocol'
  | 'timeout'
  | 'other';

/** Error code of a certificate that carries none of the expected SPIFFE IDs (our own, as Node has none). */
export const IDENTITY_MISMATCH = 'ERR_TLS_IDENTITY_MISMATCH';

const BY_CODE: Record<string, TlsFailureReason> = {
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not_yet_valid',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown_ca',
  CERT_SIGNATURE_FAILURE: 'unknown_ca',
  CERT_UNTRUSTED: 'unknown_ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self_signed',
  // The leaf is signed by a CA that the peer sent along but we do not trust (a chain such as `certs issue` writes):
  // a wrong CA, not a self-signed certificate.
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown_ca',
  ERR_TLS_CERT_ALTNAME_INVALID: 'name_mismatch',
  [IDENTITY_MISMATCH]: 'identity_mismatch',
  ERR_TLS_HANDSHAKE_TIMEOUT: 'timeout',
  ERR_SSL_WRONG_VERSION_NUMBER: 'not_tls',
  ERR_SSL_HTTP_REQUEST: 'not_tls',
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'no_client_cert',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'no_client_cert',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'expired',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'unknown_ca',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'unknown_ca',
};

const SENTENCE: Record<TlsFailureReason, string> = {
  expired: 'the certificate has expired',
  not_yet_valid: 'the certificate is not yet valid',
  unknown_ca: 'the certificate is not signed by a trusted CA (wrong CA)',
  self_signed: 'the certificate is self-signed and not trusted',
  name_mismatch: 'the certificate does not match the server name',
  identity_mismatch: 'the certificate carries none of the expected identities',
  no_client_cert: 'no client certificate was presented',
  not_tls: 'the peer does not speak TLS',
  protocol: 'TLS protocol failure',
  timeout: 'the TLS handshake did not finish in time',
  other: 'TLS failure',
};

/** The reason for a TLS error (verification codes, handshake errors), or 'other'. */
export function tlsFailureReason(err: unknown): TlsFailureReason {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  const known = BY_CODE[code];
  if (known) return known;
  if (code.startsWith('ERR_SSL_')) return /VERSION|PROTOCOL|CIPHER/.test(code) ? 'protocol' : 'other';
  return 'other';
}

/** True for errors that come from TLS (handshake or verification), as opposed to TCP. */
export function isTlsError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code ?? '';
  return code in BY_CODE || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_');
}

/** "the certificate has expired (CERT_HAS_EXPIRED)". */
export function describeTlsFailure(err: unknown, reason = tlsFailureReason(err)): string {
  const e = err as { code?: string; message?: string } | undefined;
  const detail = reason === 'identity_mismatch' || reason === 'other' || reason === 'protocol' ? e?.message : e?.code;
  return detail ? `${SENTENCE[reason]} (${detail})` : SENTENCE[reason];
}
