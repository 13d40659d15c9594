#!/usr/bin/env bash
# The mesh-hop example end to end (see README.md): app -> sidecar A -> HTTP/2 + mTLS -> sidecar B -> app, checking the
# shared connection, the hop marker, the budget that crosses the hop and the identities in both access logs.
# Ports: OUTBOUND_PORT (15001) and ADMIN_PORT (15000) for A, INBOUND_PORT (16006) and B_ADMIN_PORT (16000) for B,
# APP_PORT (8080) for the app.
source "$(dirname "$0")/../lib.sh"
export ROOT LOGDIR CERTS="$LOGDIR/certs" SIDECAR_BIN="$ROOT/bin/sidecar.js"
export OUTBOUND_PORT="${OUTBOUND_PORT:-15001}" ADMIN_PORT="${ADMIN_PORT:-15000}" INBOUND_PORT="${INBOUND_PORT:-16006}"
export B_ADMIN_PORT="${B_ADMIN_PORT:-16000}" APP_PORT="${APP_PORT:-8080}"

run 'bash $ROOT/examples/mtls/make-certs.sh $CERTS >/dev/null && echo certificates made'
expect '^certificates made$' 'a mesh CA and two workload certificates'

run 'node $SIDECAR_BIN validate -c $ROOT/examples/mesh-hop/sidecar-a.yaml && node $SIDECAR_BIN validate -c $ROOT/examples/mesh-hop/sidecar-b.yaml; echo "exit $?"'
expect '^exit 0$' 'both configs are valid'
app orders "$APP_PORT"
sidecar "$ROOT/examples/mesh-hop/sidecar-b.yaml" "$B_ADMIN_PORT" sidecar-b
sidecar "$ROOT/examples/mesh-hop/sidecar-a.yaml" "$ADMIN_PORT" sidecar-a

# One request: the app behind B gets plain HTTP/1.1, what is left of A's 3 s budget, and no hop marker.
run 'curl -si -H "x-request-id: mesh-hop-1" http://127.0.0.1:$OUTBOUND_PORT/orders/1'
expect '^HTTP/1.1 200' 'through A and B to the app'
expect '"x-sidecar-timeout": "(2[0-9]{3}|3000)"' "the app is told what is left of A's 3 s, not B's 15 s"
expect '"x-forwarded-proto": "https"' 'B received it over TLS'
expect_not 'x-sidecar-hop' 'B removed the hop marker'

sleep 0.3   # the access logs are flushed every 100 ms
run 'grep "mesh-hop-1" $LOGDIR/sidecar-b.access.log'
expect '"protocol":"HTTP/2"' 'A spoke HTTP/2 to B'
expect '"peer_identity":"spiffe://example.org/ns/default/sa/client"' "B's log names A's verified identity"
run 'grep "mesh-hop-1" $LOGDIR/sidecar-a.access.log'
expect '"upstream_identity":"spiffe://example.org/ns/default/sa/server"' "A's log names B's verified identity"

# 32 requests at once from the app: all over the one HTTP/2 connection A already has to B.
run 'seq 32 | xargs -P 32 -I{} curl -s -o /dev/null -w "%{http_code}\n" http://127.0.0.1:$OUTBOUND_PORT/orders/{} | sort | uniq -c'
expect '^ *32 200$' '32 answers'
run 'curl -s http://127.0.0.1:$B_ADMIN_PORT/metrics | grep "sidecar_downstream_transport_connections_total{listener=\"inbound\""'
expect 'transport="mtls"\} 1$' 'one mTLS connection between the sidecars for all 33 requests'

# The app cannot pass itself off as a sidecar: A's outbound listener ignores the marker (hop_marker: ignore).
run 'curl -s -H "x-sidecar-hop: 1" -H "x-sidecar-timeout: 500" http://127.0.0.1:$OUTBOUND_PORT/orders/2'
expect '"x-sidecar-timeout": "(2[0-9]{3}|3000)"' "the app's own 500 ms was not taken from it"
done_ok
