#!/usr/bin/env bash
# The forward-proxy example end to end: the app's outbound sidecar, an "orders" service behind its own inbound
# sidecar (the basic example's config), a local app for pass-through, and the documented requests.
# Ports: OUTBOUND_PORT (15001), ADMIN_PORT (15000), ORDERS_PORT (the orders sidecar, 16006), ORDERS_ADMIN_PORT
# (16000), APP_PORT (the local app, 8080), APP2_PORT (the orders app, 9090).
source "$(dirname "$0")/../lib.sh"
export OUTBOUND_PORT="${OUTBOUND_PORT:-15001}" ADMIN_PORT="${ADMIN_PORT:-15000}" ORDERS_PORT="${ORDERS_PORT:-16006}"
export ORDERS_ADMIN_PORT="${ORDERS_ADMIN_PORT:-16000}" APP_PORT="${APP_PORT:-8080}" APP2_PORT="${APP2_PORT:-9090}"

app orders "$APP2_PORT"
app local-app "$APP_PORT"
# The orders service's own sidecar: the basic example, moved to the orders ports.
INBOUND_PORT="$ORDERS_PORT" ADMIN_PORT="$ORDERS_ADMIN_PORT" APP_PORT="$APP2_PORT" sidecar "$ROOT/examples/basic/sidecar.yaml" "$ORDERS_ADMIN_PORT" orders-sidecar
sidecar "$ROOT/examples/forward-proxy/sidecar.yaml" "$ADMIN_PORT" outbound-sidecar

# curl reads the lower-case http_proxy for http:// URLs (it ignores upper-case HTTP_PROXY).
run 'http_proxy=http://127.0.0.1:$OUTBOUND_PORT curl -s http://orders/api/items'
expect '"app": "orders"' 'routed by host to the orders cluster'
expect '"path": "/api/items"' 'the path is kept'
expect '"via": "1.1 sidecar-[0-9a-f]+\.outbound, 2 sidecar-[0-9a-f]+\.inbound"' 'over HTTP/2 between the two sidecars'

run 'curl -s -x http://127.0.0.1:$OUTBOUND_PORT http://localhost:$APP_PORT/'
expect '"app": "local-app"' 'pass-through to an allowed host'
expect_not '"(x-request-id|x-forwarded-for|x-sidecar-timeout)"' 'a host outside the mesh gets none of the mesh headers'
expect '"via": "1.1 [0-9a-f]{8}"' 'Via only as an opaque pseudonym (loops stay detectable)'

run 'curl -si -x http://127.0.0.1:$OUTBOUND_PORT http://evil.example/'
expect '^HTTP/1.1 403' 'a host not on the allow-list'
expect '^x-sidecar-flag: FP' 'flag FP'
done_ok
