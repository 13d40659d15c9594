#!/usr/bin/env bash
# The basic example end to end: a stand-in app, the inbound sidecar, the documented requests (see README.md).
# Ports: INBOUND_PORT (15006), ADMIN_PORT (15000), APP_PORT (8080).
source "$(dirname "$0")/../lib.sh"
export INBOUND_PORT="${INBOUND_PORT:-15006}" ADMIN_PORT="${ADMIN_PORT:-15000}" APP_PORT="${APP_PORT:-8080}"

app app "$APP_PORT"
sidecar "$ROOT/examples/basic/sidecar.yaml" "$ADMIN_PORT"

run 'curl -si http://127.0.0.1:$INBOUND_PORT/'
expect '^HTTP/1.1 200' 'proxied to the app'
expect '"x-request-id": "[0-9a-f-]{36}"' 'x-request-id added'
expect '"x-forwarded-for": "127.0.0.1"' 'X-Forwarded-For added'
expect '"x-forwarded-proto": "http"' 'X-Forwarded-Proto added'
expect '"via": "1.1 sidecar-' 'Via added'

run 'curl -si http://127.0.0.1:$INBOUND_PORT/sidecar/health'
expect '^HTTP/1.1 200' 'direct response'

run 'curl -s http://127.0.0.1:$ADMIN_PORT/metrics | grep sidecar_requests_total'
expect 'sidecar_requests_total\{listener="inbound",route="app",cluster="app",status_class="2xx"\} 1' 'the request is counted'

# Stop the app: the sidecar answers for it.
kill -TERM "$APP_PID"; wait "$APP_PID" 2>/dev/null || true
run 'curl -si http://127.0.0.1:$INBOUND_PORT/'
expect '^HTTP/1.1 503' '503 without the app'
expect '^x-sidecar-flag: UF' 'flag UF'
expect "^x-sidecar-error: upstream connect refused by 127.0.0.1:$APP_PORT" 'the cause in plain words'
done_ok
