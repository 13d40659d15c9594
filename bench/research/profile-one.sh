#!/bin/bash
# bench/research/profile-one.sh <sidecar.yaml> <out-dir> [repo-root]: one sidecar under `wrk -t1 -c20` (3 s warm-up,
# 5 s measured), CPU-profiled (--cpu-prof) and stopped through admin POST /quit so the profile is written after the
# drain. Prints req/s and CPU µs per request over the measured run (all threads, and the main one). The config must
# listen on 127.0.0.1:28201 with its admin on 28202, an upstream (dist/bench/upstream.js 28280) already running.
# Then: node dist/bench/research/profile-shares.js <out-dir>...
set -eu
cfg=$1; out=$2; root=${3:-$(cd "$(dirname "$0")/../.." && pwd)}
mkdir -p "$out"; rm -f "$out"/*.cpuprofile
cd "$root"
node --cpu-prof --cpu-prof-dir="$out" bin/sidecar.js run -c "$cfg" >"$out/sidecar.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -s -o /dev/null 127.0.0.1:28201/ && break; sleep 0.2; done
wrk -t1 -c20 -d3s http://127.0.0.1:28201/ >/dev/null
ticks() { awk '{print $14+$15}' "$1"; }
c0=$(ticks /proc/$pid/stat); m0=$(ticks /proc/$pid/task/$pid/stat)
res=$(wrk -t1 -c20 -d5s http://127.0.0.1:28201/)
c1=$(ticks /proc/$pid/stat); m1=$(ticks /proc/$pid/task/$pid/stat)
req=$(echo "$res" | grep -oP '\d+(?= requests in)')
rps=$(echo "$res" | grep -oP 'Requests/sec:\s+\K[\d.]+')
hz=$(getconf CLK_TCK)
echo "$out rps=$rps cpu_us_per_req=$(( (c1 - c0) * 1000000 / hz / req )) main_us_per_req=$(( (m1 - m0) * 1000000 / hz / req ))"
curl -s -XPOST http://127.0.0.1:28202/quit >/dev/null
wait $pid || true
