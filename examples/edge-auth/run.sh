#!/usr/bin/env bash
# The edge-auth example end to end (see README.md): a stand-in identity provider (token.mjs), a stand-in app, the
# sidecar with api_key, jwt_authn and rbac, and the documented requests, each output checked.
# Ports: INBOUND_PORT (15006), ADMIN_PORT (15000), APP_PORT (8080).
source "$(dirname "$0")/../lib.sh"
export INBOUND_PORT="${INBOUND_PORT:-15006}" ADMIN_PORT="${ADMIN_PORT:-15000}" APP_PORT="${APP_PORT:-8080}"
export EDGE_AUTH_DIR="$LOGDIR/idp"
mkdir -p "$EDGE_AUTH_DIR"
cd "$ROOT"
node examples/edge-auth/token.mjs init "$EDGE_AUTH_DIR"
export READ_TOKEN="$(node examples/edge-auth/token.mjs sign "$EDGE_AUTH_DIR" 'orders:read')"
export WRITE_TOKEN="$(node examples/edge-auth/token.mjs sign "$EDGE_AUTH_DIR" 'orders:read orders:write')"

app app "$APP_PORT"
sidecar "$ROOT/examples/edge-auth/sidecar.yaml" "$ADMIN_PORT"

run 'curl -si http://127.0.0.1:$INBOUND_PORT/public/menu'
expect '^HTTP/1.1 200' 'public paths need no credentials'

run 'curl -si http://127.0.0.1:$INBOUND_PORT/orders'
expect '^HTTP/1.1 403' 'anything else needs some'
expect '^x-sidecar-flag: RBAC' 'flag RBAC'
expect '^x-sidecar-error: rbac: no allow rule matched \(default deny\)' 'the cause'

run 'curl -si -H "authorization: Bearer $READ_TOKEN" -H "x-user: mallory" http://127.0.0.1:$INBOUND_PORT/orders'
expect '^HTTP/1.1 200' 'a valid token reads'
expect '"x-user": "alice"' 'the sub claim forwarded, the client copy replaced'

run 'curl -si -H "authorization: Bearer not-a-token" http://127.0.0.1:$INBOUND_PORT/orders'
expect '^HTTP/1.1 401' 'a present bad token is refused even though authentication is optional'
expect '^www-authenticate: Bearer realm="sidecar", error="invalid_token", error_description="token malformed"' 'RFC 6750 challenge'

run 'curl -si -X POST -H "authorization: Bearer $READ_TOKEN" http://127.0.0.1:$INBOUND_PORT/orders'
expect '^HTTP/1.1 403' 'writing needs the orders:write scope'

run 'curl -si -X POST -H "authorization: Bearer $WRITE_TOKEN" http://127.0.0.1:$INBOUND_PORT/orders'
expect '^HTTP/1.1 200' 'with it, the write passes'

run 'curl -si -H "x-api-key: demo-reporting-key" http://127.0.0.1:$INBOUND_PORT/orders'
expect '^HTTP/1.1 200' 'an API key reads'
expect_not 'demo-reporting-key' 'the key is not forwarded'

run 'curl -si -H "x-api-key: demo-reporting-key" http://127.0.0.1:$INBOUND_PORT/admin/users'
expect '^HTTP/1.1 403' 'deny wins'
expect '^x-sidecar-error: rbac: denied by rule no-admin-for-keys \(principal reporting\)' 'the rule named'

run 'curl -si -H "x-api-key: wrong" http://127.0.0.1:$INBOUND_PORT/orders'
expect '^HTTP/1.1 401' 'an unknown key'

run 'curl -s http://127.0.0.1:$ADMIN_PORT/metrics | grep -E "sidecar_(authn_total|rbac_decisions_total)"'
expect 'sidecar_authn_total\{listener="edge",route="",filter="jwt_authn",outcome="ok"\} [1-9]' 'authn counted'
expect 'sidecar_rbac_decisions_total\{listener="edge",route="",decision="deny"\} [1-9]' 'rbac counted'
done_ok
