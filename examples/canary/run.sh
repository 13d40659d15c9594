#!/usr/bin/env bash
# The canary example end to end: v1 (two instances) and v2 stand-in apps, the sidecar, the documented requests.
# Ports: INBOUND_PORT (15006), ADMIN_PORT (15000), APP_PORT / APP2_PORT (v1: 8081, 8082), APP3_PORT (v2: 8083).
source "$(dirname "$0")/../lib.sh"
export INBOUND_PORT="${INBOUND_PORT:-15006}" ADMIN_PORT="${ADMIN_PORT:-15000}"
export APP_PORT="${APP_PORT:-8081}" APP2_PORT="${APP2_PORT:-8082}" APP3_PORT="${APP3_PORT:-8083}"

app v1-a "$APP_PORT"
app v1-b "$APP2_PORT"
app v2 "$APP3_PORT"
"${SIDECAR[@]}" validate -c "$ROOT/examples/canary/sidecar.yaml"
sidecar "$ROOT/examples/canary/sidecar.yaml" "$ADMIN_PORT"

# 90/10 split between v1 and v2 (random per request: the counts vary from run to run).
run 'for i in $(seq 20); do curl -s http://127.0.0.1:$INBOUND_PORT/ | grep -o "\"app\": \"[^\"]*\""; done | sort | uniq -c'
expect 'v1-' 'most requests go to v1'

run 'curl -s -H "x-canary: 1" http://127.0.0.1:$INBOUND_PORT/ | grep -o "\"app\": \"[^\"]*\""'
expect '"app": "v2"' 'x-canary: 1 always goes to v2'

run 'curl -si http://127.0.0.1:$INBOUND_PORT/old/page'
expect '^HTTP/1.1 308' 'legacy paths are redirected'
expect "^location: http://127.0.0.1:$INBOUND_PORT/new/page" 'to the new prefix'

# Sticky sessions: with a session cookie, every v1 answer comes from the same v1 instance (ring hash).
run 'for i in $(seq 12); do curl -s -b session=alice http://127.0.0.1:$INBOUND_PORT/ | grep -o "\"app\": \"v1-[ab]\""; done | sort -u'
expect 'v1-' 'v1 answered'
if [ "$(grep -c 'v1-' <<<"$OUT")" -ne 1 ]; then echo "FAILED: one session, one v1 instance" >&2; exit 1; fi
done_ok
