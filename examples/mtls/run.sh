#!/usr/bin/env bash
# The mtls example's certificate part end to end (see README.md): make a CA and two workload certificates with the
# CLI, inspect them, and check that they verify against the CA and not against another one.
source "$(dirname "$0")/../lib.sh"
export CERTS="$LOGDIR/certs" SIDECAR_BIN="$ROOT/bin/sidecar.js" MAKE_CERTS="$ROOT/examples/mtls/make-certs.sh"

run 'bash $MAKE_CERTS $CERTS'
expect 'CA for trust domain example.org \(ec-p256, valid 365d\)' 'a CA for the trust domain'
expect 'spiffe://example.org/ns/default/sa/client \(ec-p256, serial [0-9a-f]{32}, valid 24h\)' 'the client identity issued'
expect 'spiffe://example.org/ns/default/sa/server \(ec-p256, serial [0-9a-f]{32}, valid 24h\)' 'the server identity issued'

run 'stat -c "%a %n" $CERTS/ca/ca.key $CERTS/client/key.pem $CERTS/server/key.pem'
expect '^600 .*ca\.key$' 'the CA key is 0600'
expect '^600 .*client/key\.pem$' 'the workload keys are 0600'

run 'node $SIDECAR_BIN certs inspect $CERTS/server/cert.pem --ca $CERTS/ca/ca.crt'
expect 'SPIFFE ID: +spiffe://example.org/ns/default/sa/server' 'the SPIFFE ID'
expect 'SANs: +URI:spiffe://example.org/ns/default/sa/server, DNS:localhost' 'the SANs'
expect 'valid now, expires in 2[34]h' 'short-lived'
expect 'verification: verifies against' 'signed by the mesh CA'

run 'node $SIDECAR_BIN certs inspect $CERTS/client/cert.pem --json'
expect '"spiffe_id": "spiffe://example.org/ns/default/sa/client"' 'inspect --json'
expect '"certificates_in_file": 2' 'cert.pem holds the chain'

# Running it again changes nothing: existing files are kept unless FORCE=1.
run 'bash $MAKE_CERTS $CERTS; echo "exit $?"'
expect 'already exist; use --force to replace' 'nothing is overwritten'
expect '^exit 2$' 'exit 2'

# A CA of the same name but another key: the certificate does not verify against it (exit 1).
run 'node $SIDECAR_BIN certs init-ca --trust-domain example.org --out $CERTS/other-ca >/dev/null && node $SIDECAR_BIN certs inspect $CERTS/client/cert.pem --ca $CERTS/other-ca/ca.crt; echo "exit $?"'
expect 'does NOT verify against' 'another CA is not trusted'
expect '^exit 1$' 'exit 1'

run 'node $SIDECAR_BIN certs issue --ca $CERTS/ca --identity spiffe://other.org/ns/default/sa/web --out $CERTS/x; echo "exit $?"'
expect 'is in trust domain "other.org", but the CA in .* signs for "example.org"' 'one trust domain per CA'
expect '^exit 2$' 'exit 2'

if command -v openssl >/dev/null; then
  run 'openssl verify -CAfile $CERTS/client/ca.pem $CERTS/client/cert.pem $CERTS/server/cert.pem'
  expect 'client/cert.pem: OK' 'openssl agrees (client)'
  expect 'server/cert.pem: OK' 'openssl agrees (server)'
fi
done_ok
