import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeTlsFailure, IDENTITY_MISMATCH, isTlsError, tlsFailureReason } from './tls-errors.js';

test('verification and handshake codes map to plain reasons', () => {
  const cases: Array<[string, string]> = [
    ['CERT_HAS_EXPIRED', 'expired'],
    ['CERT_NOT_YET_VALID', 'not_yet_valid'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unknown_ca'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'self_signed'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'unknown_ca'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'name_mismatch'],
    [IDENTITY_MISMATCH, 'identity_mismatch'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'not_tls'],
    ['ERR_SSL_UNSUPPORTED_PROTOCOL', 'protocol'],
    ['ERR_TLS_HANDSHAKE_TIMEOUT', 'timeout'],
  ];
  for (const [code, reason] of cases) {
    assert.equal(tlsFailureReason({ code }), reason, code);
    assert.ok(isTlsError({ code }), code);
  }
  assert.equal(isTlsError({ code: 'ECONNREFUSED' }), false);
  assert.equal(describeTlsFailure({ code: 'CERT_HAS_EXPIRED' }), 'the certificate has expired (CERT_HAS_EXPIRED)');
});
