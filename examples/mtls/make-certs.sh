#!/usr/bin/env bash
# Makes a mesh CA (trust domain example.org) and two workload certificates with `sidecar certs`: one per sidecar.
# Usage: examples/mtls/make-certs.sh [DIR]   (default examples/mtls/certs; FORCE=1 replaces existing files)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DIR="${1:-$ROOT/examples/mtls/certs}"
TRUST_DOMAIN="${TRUST_DOMAIN:-example.org}"
certs() { node "$ROOT/bin/sidecar.js" certs "$@"; }
force=()
if [ "${FORCE:-0}" = 1 ]; then force=(--force); fi

# The CA: DIR/ca/ca.crt and DIR/ca/ca.key (0600). Kept when it exists, so re-issuing keeps one trust bundle.
if [ ! -f "$DIR/ca/ca.crt" ] || [ "${FORCE:-0}" = 1 ]; then
  certs init-ca --trust-domain "$TRUST_DOMAIN" --out "$DIR/ca" "${force[@]}"
fi
# Each sidecar's identity: DIR/<name>/cert.pem (leaf + CA), key.pem (0600), ca.pem (trust bundle).
certs issue --ca "$DIR/ca" --identity "spiffe://$TRUST_DOMAIN/ns/default/sa/client" --out "$DIR/client" --ttl 24h "${force[@]}"
certs issue --ca "$DIR/ca" --identity "spiffe://$TRUST_DOMAIN/ns/default/sa/server" --out "$DIR/server" --ttl 24h --dns localhost "${force[@]}"
