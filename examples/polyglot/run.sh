#!/usr/bin/env bash
# The polyglot example end to end (see README.md): a JSON client -> sidecar A -> HTTP/2 + mTLS, protobuf bodies ->
# sidecar B -> a Node.js JSON app. Uses the Java client (test/fixtures/java/PolyglotClient.java) when java is
# installed, curl in any case. Ports: OUTBOUND_PORT (15001), ADMIN_PORT (15000), INBOUND_PORT (16006),
# B_ADMIN_PORT (16000), APP_PORT (8080).
source "$(dirname "$0")/../lib.sh"
export ROOT LOGDIR CERTS="$LOGDIR/certs" SIDECAR_BIN="$ROOT/bin/sidecar.js"
export OUTBOUND_PORT="${OUTBOUND_PORT:-15001}" ADMIN_PORT="${ADMIN_PORT:-15000}" INBOUND_PORT="${INBOUND_PORT:-16006}"
export B_ADMIN_PORT="${B_ADMIN_PORT:-16000}" APP_PORT="${APP_PORT:-8080}"
cd "$ROOT"

run 'bash $ROOT/examples/mtls/make-certs.sh $CERTS >/dev/null && echo certificates made'
expect '^certificates made$' 'a mesh CA and two workload certificates'
run 'node $SIDECAR_BIN validate -c examples/polyglot/sidecar-a.yaml && node $SIDECAR_BIN validate -c examples/polyglot/sidecar-b.yaml; echo "exit $?"'
expect '^exit 0$' 'both configs are valid (the .proto loads, the message types exist)'

node examples/polyglot/orders-app.mjs "$APP_PORT" 2>>"$LOGDIR/apps.log" &
PIDS+=("$!")
wait_for "http://127.0.0.1:$APP_PORT/" orders-app
sidecar examples/polyglot/sidecar-b.yaml "$B_ADMIN_PORT" sidecar-b
sidecar examples/polyglot/sidecar-a.yaml "$ADMIN_PORT" sidecar-a

# Twice: the first answer teaches A that B knows the schema; from then on the request crosses as protobuf too.
for i in 1 2; do
  run 'curl -si -H "content-type: application/json" -H "x-request-id: polyglot-'$i'" --data-binary @examples/polyglot/order.json http://127.0.0.1:$OUTBOUND_PORT/orders'
done
expect '^HTTP/1.1 200' 'the order went through both sidecars'
expect '^content-type: application/json' 'the client gets JSON'
expect '^x-seen-content-type: application/json' 'and the app got JSON'
expect '"status":"PAID"' 'the app answer, as the app wrote it'

run 'curl -s -H "content-type: application/json" -d '"'"'{"customerId":"c1","items":[{"quantity":"lots"}]}'"'"' http://127.0.0.1:$OUTBOUND_PORT/orders'
expect 'items\[0\]\.quantity' 'a JSON body that does not fit OrderRequest is answered 400 by A, naming the field'

if command -v java >/dev/null; then
  run 'java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC test/fixtures/java/PolyglotClient.java http://127.0.0.1:$OUTBOUND_PORT/orders examples/polyglot/order.json 2'
  expect '"status":200,"contentType":"application/json"' 'the Java HttpClient gets JSON too'
fi

run 'curl -s http://127.0.0.1:$B_ADMIN_PORT/metrics | grep -E "sidecar_hop_(protobuf_bodies|body_bytes)_total"'
expect 'side="receiving",body="request",outcome="decoded"\} [1-9]' 'B decoded protobuf requests'
expect 'side="receiving",body="response",outcome="encoded"\} [1-9]' 'B sent protobuf answers'
expect 'encoding="protobuf"\} [1-9]' 'bytes on the hop as protobuf (compare encoding="json")'

sleep 0.3
run 'grep "polyglot-2" $LOGDIR/sidecar-b.access.log'
expect '"hop_payload":"pb:req pb:res"' 'the access log says what crossed as protobuf'
expect '"peer_identity":"spiffe://example.org/ns/default/sa/client"' "B's log names A's verified identity"
run 'grep "polyglot-2" $LOGDIR/sidecar-a.access.log'
expect '"upstream_identity":"spiffe://example.org/ns/default/sa/server"' "A's log names B's verified identity"
done_ok
