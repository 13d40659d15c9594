#!/usr/bin/env bash
# The tracing example end to end: a traced request, its trace id upstream and in the access log, spans exported.
# Ports: INBOUND_PORT (15006), ADMIN_PORT (15000), APP_PORT (8080), APP2_PORT (4318: the stand-in collector).
source "$(dirname "$0")/../lib.sh"
export INBOUND_PORT="${INBOUND_PORT:-15006}" ADMIN_PORT="${ADMIN_PORT:-15000}" APP_PORT="${APP_PORT:-8080}" APP2_PORT="${APP2_PORT:-4318}"
export OTLP_ENDPOINT="http://127.0.0.1:$APP2_PORT/v1/traces"

app app-1 "$APP_PORT"
node "$ROOT/examples/tracing/collector.mjs" "$APP2_PORT" 2>>"$LOGDIR/apps.log" &
PIDS+=("$!")
wait_for "http://127.0.0.1:$APP2_PORT/" collector
sidecar "$ROOT/examples/tracing/sidecar.yaml" "$ADMIN_PORT"

run 'curl -s -H "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" http://127.0.0.1:$INBOUND_PORT/orders'
expect '"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01"' 'the app sees the same trace, its parent the sidecar client span'
expect '"b3": "4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-1"' 'and B3, as configured'

run 'sleep 1; curl -s http://127.0.0.1:$APP2_PORT/'
expect '^exports: [1-9]' 'the spans were exported'
expect 'content-type: application/x-protobuf' 'as OTLP/HTTP protobuf'

run 'curl -s http://127.0.0.1:$ADMIN_PORT/metrics | grep ^sidecar_tracing_spans'
expect '^sidecar_tracing_spans_exported_total 2$' 'one server span and one client span'

run "grep -o '\"trace_id\":\"[0-9a-f]*\",\"span_id\":\"[0-9a-f]*\"' $LOGDIR/sidecar.access.log"
expect '"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"[0-9a-f]{16}"' 'the access log line carries the trace and span ids'
done_ok
