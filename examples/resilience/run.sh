#!/usr/bin/env bash
# The resilience example end to end: two app instances, the sidecar, retries, fault injection, metrics.
# Ports: INBOUND_PORT (15006), ADMIN_PORT (15000), APP_PORT (8080), APP2_PORT (8081).
source "$(dirname "$0")/../lib.sh"
export INBOUND_PORT="${INBOUND_PORT:-15006}" ADMIN_PORT="${ADMIN_PORT:-15000}" APP_PORT="${APP_PORT:-8080}" APP2_PORT="${APP2_PORT:-8081}"

app app-1 "$APP_PORT"
FIRST_PID=$APP_PID
app app-2 "$APP2_PORT"
SECOND_PID=$APP_PID
sidecar "$ROOT/examples/resilience/sidecar.yaml" "$ADMIN_PORT"

run 'curl -si http://127.0.0.1:$INBOUND_PORT/'
expect '^HTTP/1.1 200' 'served by either instance'

run 'curl -si -H "x-sidecar-fault-abort: 503" http://127.0.0.1:$INBOUND_PORT/chaos/'
expect '^HTTP/1.1 503' 'fault abort'
expect '^x-sidecar-flag: FI' 'flag FI'

run 'curl -s -o /dev/null -w "%{http_code} after %{time_total}s\n" -H "x-sidecar-fault-delay-ms: 500" http://127.0.0.1:$INBOUND_PORT/chaos/'
expect '^200 after (0\.[5-9]|[1-9])' 'answered after 500 ms'

# Stop the second instance: a refused attempt is retried on the first.
kill -TERM "$SECOND_PID"; wait "$SECOND_PID" 2>/dev/null || true
run 'for i in 1 2 3 4; do curl -s -o /dev/null -w "%{http_code}\n" http://127.0.0.1:$INBOUND_PORT/; done'
expect_not '^[^2]' 'still 200: refused attempts are retried on the other instance'

run 'curl -s http://127.0.0.1:$ADMIN_PORT/metrics | grep -E "^sidecar_(retries|faults_injected)_total"'
expect 'sidecar_retries_total\{cluster="app",' 'retries counted'
expect 'sidecar_faults_injected_total\{listener="inbound",route="chaos",kind="abort"\} 1' 'faults counted'

# Both instances stopped: every attempt fails, the answer says so.
kill -TERM "$FIRST_PID"; wait "$FIRST_PID" 2>/dev/null || true
run 'curl -si http://127.0.0.1:$INBOUND_PORT/'
expect '^HTTP/1.1 503' '503 with no instance left'
expect '^x-sidecar-flag: URX' 'flag URX: retries were made and all failed'
expect '^x-sidecar-error: .*attempt 3/3' 'the cause names the attempts'
done_ok
