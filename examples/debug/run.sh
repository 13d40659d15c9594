#!/usr/bin/env bash
# The debug example end to end: a request's story from the admin port and from `sidecar explain`.
# Ports: INBOUND_PORT (15006), ADMIN_PORT (15000), APP_PORT (8080), APP2_PORT (8081, left closed).
source "$(dirname "$0")/../lib.sh"
export INBOUND_PORT="${INBOUND_PORT:-15006}" ADMIN_PORT="${ADMIN_PORT:-15000}" APP_PORT="${APP_PORT:-8080}" APP2_PORT="${APP2_PORT:-8081}"

app app-1 "$APP_PORT"
sidecar "$ROOT/examples/debug/sidecar.yaml" "$ADMIN_PORT"

run 'for i in 1 2 3 4 5 6; do curl -s -o /dev/null -w "%{http_code}\n" -H "x-request-id: demo-$i" http://127.0.0.1:$INBOUND_PORT/; done'
expect_not '^[^2]' 'all 200: refused attempts on the closed endpoint are retried'

run 'curl -s http://127.0.0.1:$ADMIN_PORT/debug/requests'
expect '^recent \(' 'the recent ring is listed'

run 'for i in 1 2 3 4 5 6; do curl -s http://127.0.0.1:$ADMIN_PORT/debug/requests/demo-$i; done'
expect 'Route reads sent it to cluster app' 'the story names route and cluster'
expect 'failed UF \(not-sent\)' 'a refused attempt is in a story'
expect 'retry_on matched \(connect-failure\), retrying' 'and the retry decision'

run "node $ROOT/bin/sidecar.js explain demo-1 --admin 127.0.0.1:$ADMIN_PORT"
expect '^Outcome: succeeded \(200\)' 'sidecar explain prints the story'

run 'curl -s -o /dev/null -D - http://127.0.0.1:$INBOUND_PORT/ | tr -d "\r" | sed -n "s/^x-request-id: //p" | xargs -I{} sh -c "echo id={}; node '"$ROOT"'/bin/sidecar.js explain {} --admin 127.0.0.1:$ADMIN_PORT"'
expect '^id=.+' 'the answer carries x-request-id (request_id_in_response)'
expect '^Outcome: succeeded \(200\)' 'and that id is the one to explain'

run 'curl -s http://127.0.0.1:$ADMIN_PORT/latency'
expect '"relative_error": 0.02' 'latency history with its stated error'
expect '"p99": ' 'p99 per series'
done_ok
