#!/usr/bin/env bash
# The rate-limit example end to end (see README.md): a stand-in app, the edge sidecar, the documented requests.
# Ports: INBOUND_PORT (15006), ADMIN_PORT (15000), APP_PORT (8080).
source "$(dirname "$0")/../lib.sh"
export INBOUND_PORT="${INBOUND_PORT:-15006}" ADMIN_PORT="${ADMIN_PORT:-15000}" APP_PORT="${APP_PORT:-8080}"

app app "$APP_PORT"
sidecar "$ROOT/examples/rate-limit/sidecar.yaml" "$ADMIN_PORT"

run 'for i in 1 2 3 4; do curl -s -o /dev/null -w "%{http_code}\n" http://127.0.0.1:$INBOUND_PORT/orders; done'
expect '^200$' 'the burst is served'
expect '^429$' 'then 429'

run 'curl -si http://127.0.0.1:$INBOUND_PORT/orders'
expect '^HTTP/1.1 429' 'still limited'
expect '^x-sidecar-flag: RL' 'flag RL'
expect '^retry-after: 1' 'Retry-After'
expect '^ratelimit-policy: "local";q=3;w=2' 'RateLimit-Policy'
expect '^ratelimit: "local";r=0;t=' 'RateLimit'

run 'sleep 1.1; curl -si http://127.0.0.1:$INBOUND_PORT/orders'
expect '^HTTP/1.1 200' 'refilled after a second'

run 'curl -s -o /dev/null -w "%{http_code}\n" --path-as-is "http://127.0.0.1:$INBOUND_PORT/public/..%2Fadmin"'
expect '^400$' 'an encoded slash is refused'

run 'curl -s --path-as-is "http://127.0.0.1:$INBOUND_PORT//public/../admin;x"'
expect 'admin is not exposed here' 'dot segments and ;params resolve to the /admin rule'

run 'curl -s http://127.0.0.1:$ADMIN_PORT/metrics | grep sidecar_rate_limit_decisions_total'
expect 'result="limited"\} [1-9]' 'limited decisions are counted'
done_ok
