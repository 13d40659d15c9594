#!/usr/bin/env bash
# The discovery example end to end (see README.md). Part 1, the file source, always runs. Part 2, etcd discovery and
# registration, runs when the `etcd` binary is installed (Debian: apt-get install etcd-server) and says so otherwise.
# Ports: OUTBOUND_PORT/ADMIN_PORT for the file sidecar, INBOUND_PORT/B_ADMIN_PORT for the etcd one; APP_PORT,
# APP2_PORT, APP3_PORT for the apps; ORDERS_PORT/ORDERS_ADMIN_PORT for etcd's client and peer ports.
source "$(dirname "$0")/../lib.sh"
export ROOT LOGDIR SIDECAR_BIN="$ROOT/bin/sidecar.js"
export OUTBOUND_PORT="${OUTBOUND_PORT:-15001}" ADMIN_PORT="${ADMIN_PORT:-15000}" INBOUND_PORT="${INBOUND_PORT:-16001}"
export B_ADMIN_PORT="${B_ADMIN_PORT:-16000}" APP_PORT="${APP_PORT:-8080}" APP2_PORT="${APP2_PORT:-8081}" APP3_PORT="${APP3_PORT:-8082}"
export ETCD_PORT="${ORDERS_PORT:-2379}" ETCD_PEER_PORT="${ORDERS_ADMIN_PORT:-2380}"
export ENDPOINTS_FILE="$LOGDIR/endpoints.yaml"

# publish LIST: writes the endpoint file atomically (a temp file renamed over it), as a deploy tool would.
publish() { printf 'endpoints: [%s]\n' "$1" >"$ENDPOINTS_FILE.tmp" && mv "$ENDPOINTS_FILE.tmp" "$ENDPOINTS_FILE"; }
export -f publish

publish "\"127.0.0.1:$APP_PORT\""
app orders-1 "$APP_PORT"
app orders-2 "$APP2_PORT"
sidecar "$ROOT/examples/discovery/sidecar-file.yaml" "$ADMIN_PORT" sidecar-file

run 'curl -s http://127.0.0.1:$OUTBOUND_PORT/orders/1 | grep "\"app\""'
expect '"app": "orders-1"' 'the one endpoint in the file'

run 'publish "\"127.0.0.1:$APP_PORT\", { address: \"127.0.0.1:$APP2_PORT\", weight: 3 }"; sleep 0.3; for i in $(seq 8); do curl -s http://127.0.0.1:$OUTBOUND_PORT/ | grep "\"app\""; done | sort | uniq -c'
expect 'orders-2' 'the added endpoint takes traffic, without a reload'

run 'curl -s http://127.0.0.1:$ADMIN_PORT/clusters'
expect '"source": ?"file:' 'each endpoint names its source'
expect '"weight": ?3' 'the weight from the file'

run 'publish ""; sleep 0.3; curl -s -o /dev/null -w "%{http_code}\n" http://127.0.0.1:$OUTBOUND_PORT/; curl -s http://127.0.0.1:$ADMIN_PORT/metrics | grep "sidecar_discovery_updates_total{cluster=\"orders\",result=\"error\"}"'
expect '^200$' 'an empty publish did not black-hole the cluster'
expect 'result="error"\} [1-9]' 'and it was counted'

if ! command -v etcd >/dev/null; then
  echo "etcd is not installed (apt-get install etcd-server): skipping the etcd part"
  done_ok
  exit 0
fi

etcd --name ex --data-dir "$LOGDIR/etcd" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "ex=http://127.0.0.1:$ETCD_PEER_PORT" --log-level error --logger zap >"$LOGDIR/etcd.log" 2>&1 &
PIDS+=("$!")
wait_for "http://127.0.0.1:$ETCD_PORT/health" etcd
app orders-3 "$APP3_PORT"
sidecar "$ROOT/examples/discovery/sidecar-etcd.yaml" "$B_ADMIN_PORT" sidecar-etcd

run 'for i in $(seq 50); do curl -s http://127.0.0.1:$INBOUND_PORT/ | grep -q orders-3 && break; sleep 0.1; done; curl -s http://127.0.0.1:$INBOUND_PORT/ | grep "\"app\""'
expect '"app": "orders-3"' 'the app registered itself in etcd and the sidecar found it there'

run 'ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:$ETCD_PORT get --prefix /sidecar/services/orders/'
expect "^/sidecar/services/orders/127.0.0.1:$APP3_PORT$" 'the registration key'

run 'ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:$ETCD_PORT put /sidecar/services/orders/127.0.0.1:$APP_PORT "{\"weight\":1,\"zone\":\"a\"}" >/dev/null; sleep 0.3; curl -s http://127.0.0.1:$B_ADMIN_PORT/clusters'
expect "\"address\": ?\"127.0.0.1:$APP_PORT\"" 'a key put by hand is an endpoint at once (watched, not polled)'
expect '"source": ?"etcd:/sidecar/services/orders/"' 'its source'

run 'curl -s -X POST http://127.0.0.1:$B_ADMIN_PORT/drain >/dev/null; sleep 0.5; ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:$ETCD_PORT get --prefix --keys-only /sidecar/services/orders/'
expect_not "127.0.0.1:$APP3_PORT" 'drain withdrew the registration first'
done_ok
