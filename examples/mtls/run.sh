#!/usr/bin/env bash
# The mtls example end to end (see README.md): make a CA and two workload certificates with the CLI and check them,
# then an app behind sidecar B (mTLS only) called through sidecar A: B tells the app who called, and logs it.
# Ports: OUTBOUND_PORT (15001) and ADMIN_PORT (15000) for A, INBOUND_PORT (16006) and B_ADMIN_PORT (16000) for B,
# APP_PORT (8080) for the app.
source "$(dirname "$0")/../lib.sh"
export ROOT LOGDIR CERTS="$LOGDIR/certs" SIDECAR_BIN="$ROOT/bin/sidecar.js" MAKE_CERTS="$ROOT/examples/mtls/make-certs.sh"
export OUTBOUND_PORT="${OUTBOUND_PORT:-15001}" ADMIN_PORT="${ADMIN_PORT:-15000}" INBOUND_PORT="${INBOUND_PORT:-16006}"
export B_ADMIN_PORT="${B_ADMIN_PORT:-16000}" APP_PORT="${APP_PORT:-8080}"

# 1. The certificates.
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

# 2. Two sidecars with mutual TLS between them: app <- B (TLS, client certificate required) <- A <- curl.
run 'node $SIDECAR_BIN validate -c $ROOT/examples/mtls/sidecar-a.yaml && node $SIDECAR_BIN validate -c $ROOT/examples/mtls/sidecar-b.yaml; echo "exit $?"'
expect '^exit 0$' 'both configs are valid'
app server "$APP_PORT"
sidecar "$ROOT/examples/mtls/sidecar-b.yaml" "$B_ADMIN_PORT" sidecar-b
sidecar "$ROOT/examples/mtls/sidecar-a.yaml" "$ADMIN_PORT" sidecar-a

# A client-sent x-peer-identity is a lie B removes; the app sees the identity B verified.
run 'curl -si -H "x-peer-identity: spiffe://example.org/ns/default/sa/admin" http://127.0.0.1:$OUTBOUND_PORT/orders'
expect '^HTTP/1.1 200' 'proxied through A and B to the app'
expect '"x-peer-identity": "spiffe://example.org/ns/default/sa/client"' 'the app sees the caller identity B verified'
expect_not 'sa/admin' 'the client-sent copy is removed'
expect '"x-forwarded-proto": "https"' 'B received the request over TLS'

sleep 0.3   # the access log is flushed every 100 ms
run 'grep "\"path\":\"/orders\"" $LOGDIR/sidecar-b.access.log'
expect '"peer_identity":"spiffe://example.org/ns/default/sa/client"' "B's access log names the caller"

run 'curl -s http://127.0.0.1:$B_ADMIN_PORT/metrics | grep "sidecar_downstream_transport_connections_total{listener=\"inbound\""'
expect 'transport="mtls"\} 1' 'one mTLS connection at B (A reuses it)'

# What A does, by hand: curl with the client's certificate straight to B.
run 'curl -s --cacert $CERTS/client/ca.pem --cert $CERTS/client/cert.pem --key $CERTS/client/key.pem https://localhost:$INBOUND_PORT/orders'
expect '"x-peer-identity": "spiffe://example.org/ns/default/sa/client"' 'curl with the client certificate is the client identity'

# Without a client certificate, B refuses at the handshake: the app is never reached.
run 'curl -s --cacert $CERTS/ca/ca.crt https://localhost:$INBOUND_PORT/orders; echo "exit $?"'
expect_not '"app": "server"' 'no client certificate, no request'
expect_not '^exit 0$' 'curl fails'
run 'curl -s http://127.0.0.1:$B_ADMIN_PORT/metrics | grep "sidecar_tls_handshake_failures_total{listener=\"inbound\""'
expect 'reason="no_client_cert"\} 1' 'the refusal is counted by reason'
done_ok
