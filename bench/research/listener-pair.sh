#!/bin/bash
# bench/research/listener-pair.sh <sidecar.yaml> <port-a> <port-b> [pairs] [seconds]: what a per-listener feature
# costs, read inside one sidecar process so that process-to-process and drift noise cancel: the config has two
# listeners alike but for the feature, and wrk -c50 alternates between them (A B, B A, ...) for `pairs` windows.
# Prints the median of B's throughput over A's and the CPU per request of each (all threads, from /proc). The
# sidecar runs on CPU 0, wrk on CPU 1; the config's upstream (e.g. dist/bench/upstream.js) must already run.
# Example: listeners `plain` (port 28201) and `traced` (28203, `filters: [{ type: tracing, config: {...} }]`), both
# routing `/` to one cluster on 127.0.0.1:28280; then `listener-pair.sh pair.yaml 28201 28203`.
set -eu
cfg=$1; PA=$2; PB=$3; pairs=${4:-30}; secs=${5:-1}
cd "$(dirname "$0")/../.."
taskset -c 0 node bin/sidecar.js run -c "$cfg" >/dev/null 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
for p in "$PA" "$PB"; do for _ in $(seq 50); do curl -s -o /dev/null "127.0.0.1:$p/" && break; sleep 0.2; done; done
for p in "$PA" "$PB"; do taskset -c 1 wrk -t1 -c50 -d4s "http://127.0.0.1:$p/" >/dev/null; done
ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
run() {
  local c0 c1 res
  c0=$(ticks); res=$(taskset -c 1 wrk -t1 -c50 -d"${secs}"s "http://127.0.0.1:$1/"); c1=$(ticks)
  echo "$(echo "$res" | grep -oP '\d+(?= requests in)') $((c1 - c0))"
}
for i in $(seq "$pairs"); do
  if (( i % 2 )); then ra=$(run "$PA"); rb=$(run "$PB"); else rb=$(run "$PB"); ra=$(run "$PA"); fi
  echo "$ra $rb"
done | python3 bench/research/pair-stats.py
