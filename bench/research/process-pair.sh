#!/bin/bash
# bench/research/process-pair.sh <a.yaml> <port-a> <b.yaml> <port-b> [pairs] [seconds]: what a process-wide feature
# (access log, debug ring) costs, read from two sidecars that run side by side on CPU 0 while wrk -c50 (CPU 1)
# alternates between them (A B, B A, ...) for `pairs` windows, so drift hits both alike. Prints the median of B's
# throughput over A's and the CPU per request of each (all threads, from /proc). The configs' upstream (e.g.
# dist/bench/upstream.js) must already run; their admin ports must differ. listener-pair.sh does the same for a
# per-listener feature inside one process, which also cancels process-to-process noise. PAIR_TRUNCATE names files
# (access logs) emptied before each window.
set -eu
ca=$1; PA=$2; cb=$3; PB=$4; pairs=${5:-30}; secs=${6:-1}
cd "$(dirname "$0")/../.."
# PAIR_ROOT_A / PAIR_ROOT_B: another checkout (with its dist/ built) for that side, to compare two builds.
# PAIR_STDOUT_PIPE=1: each sidecar's stdout is a pipe read by cat on CPU 1 (as a pod's is), else /dev/null.
start() {
  if [ -n "${PAIR_STDOUT_PIPE:-}" ]; then
    taskset -c 0 node "$1/bin/sidecar.js" run -c "$2" 2>/dev/null > >(taskset -c 1 cat >/dev/null) &
  else
    taskset -c 0 node "$1/bin/sidecar.js" run -c "$2" >/dev/null 2>&1 &
  fi
}
start "${PAIR_ROOT_A:-.}" "$ca"
pa=$!
start "${PAIR_ROOT_B:-.}" "$cb"
pb=$!
trap 'kill -9 $pa $pb 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for p in "$PA" "$PB"; do for _ in $(seq 50); do curl -s -o /dev/null "127.0.0.1:$p/" && break; sleep 0.2; done; done
# A sidecar that did not start (a config error, a port still held) must not leave wrk measuring another process.
for pid in $pa $pb; do kill -0 "$pid" 2>/dev/null || { echo "a sidecar exited at start (pid $pid); check its config" >&2; exit 1; }; done
for p in "$PA" "$PB"; do taskset -c 1 wrk -t1 -c50 -d4s "http://127.0.0.1:$p/" >/dev/null; done
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
run() {
  local c0 c1 res f
  # PAIR_TRUNCATE="<file>...": emptied before each window (access logs; see emptyAccessLog in bench/features.ts).
  for f in ${PAIR_TRUNCATE:-}; do : >"$f"; done
  c0=$(ticks "$2"); res=$(taskset -c 1 wrk -t1 -c50 -d"${secs}"s "http://127.0.0.1:$1/"); c1=$(ticks "$2")
  echo "$(echo "$res" | grep -oP '\d+(?= requests in)') $((c1 - c0))"
}
for i in $(seq "$pairs"); do
  if (( i % 2 )); then ra=$(run "$PA" $pa); rb=$(run "$PB" $pb); else rb=$(run "$PB" $pb); ra=$(run "$PA" $pa); fi
  echo "$ra $rb"
done | python3 bench/research/pair-stats.py
