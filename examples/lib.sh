# Shared by the examples' run.sh scripts: start stand-in apps and sidecars in the background, wait until they are
# ready, run a documented command and check its output, and stop everything on exit (also on Ctrl-C or a failure).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIDECAR=(node "$ROOT/bin/sidecar.js")
PIDS=()
# The examples set their own proxy variables where they show them; none inherited from this shell may interfere.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/sidecar-example-XXXXXX")"

cleanup() {
  local pid
  # Sidecars drain on SIGTERM for drain_delay; a second SIGTERM cuts that short (see README "Operations").
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.2
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# app NAME PORT: starts a stand-in app (examples/echo-upstream.mjs); sets APP_PID.
app() {
  node "$ROOT/examples/echo-upstream.mjs" "$1" "$2" 2>>"$LOGDIR/apps.log" &
  APP_PID=$!
  PIDS+=("$APP_PID")
  wait_for "http://127.0.0.1:$2/" "$1"
}

# sidecar CONFIG ADMIN_PORT [NAME]: runs the sidecar (env vars pick its ports) and waits for /ready.
sidecar() {
  local log="$LOGDIR/${3:-sidecar}"
  "${SIDECAR[@]}" run -c "$1" >"$log.access.log" 2>"$log.log" &
  PIDS+=("$!")
  wait_for "http://127.0.0.1:$2/ready" "${3:-sidecar}" || { cat "$log.log" >&2; return 1; }
}

wait_for() {
  local i
  for i in $(seq 100); do
    if curl -s -o /dev/null --max-time 1 "$1"; then return 0; fi
    sleep 0.1
  done
  echo "$2 did not come up at $1" >&2
  return 1
}

# run 'COMMAND': prints the command (ports filled in), runs it with bash, keeps its output in $OUT and shows it.
run() {
  echo "\$ $(envsubst <<<"$1" 2>/dev/null || echo "$1")"
  OUT="$(bash -c "$1" 2>&1)" || true
  echo "$OUT"
  echo
}

# expect PATTERN WHAT: the last command's output must match the extended regex PATTERN.
expect() {
  if ! grep -Eq -- "$1" <<<"$OUT"; then
    echo "FAILED: $2 (expected /$1/)" >&2
    exit 1
  fi
}

# expect_not PATTERN WHAT: the last command's output must not match.
expect_not() {
  if grep -Eq -- "$1" <<<"$OUT"; then
    echo "FAILED: $2 (unexpected /$1/)" >&2
    exit 1
  fi
}

done_ok() {
  echo "all checks passed"
}
