#!/usr/bin/env bash
# Login storm: 256 concurrent password-grant connections (argon2id, default parameters)
# while a second load generator measures /healthz and the JWKS. Shows that argon2 work stays
# on its bounded pool: the async workers keep answering, and memory stays bounded.
# Usage: bench/login_storm.sh   (SKIP_BUILD=1 to reuse target/release; PORT=18095)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${PORT:-18095}
BIN="$ROOT/target/release/latchkey"
[ -n "${SKIP_BUILD:-}" ] || (cd "$ROOT" && cargo build --release --bin latchkey >/dev/null)
DIR=$(mktemp -d /tmp/latchkey-storm.XXXXXX)
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
export LATCHKEY_BIND=127.0.0.1:$PORT LATCHKEY_LOG_LEVEL=warn
export LATCHKEY_DATABASE_URL="sqlite://$DIR/latchkey.db" LATCHKEY_MASTER_KEY=$(head -c32 /dev/urandom | base64)
"$BIN" serve >"$DIR/serve.log" 2>&1 &
PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
"$BIN" clients create --name web --client-id web --public --grant password >/dev/null
echo 'storm-passphrase-1' | "$BIN" users create --email storm@example.com --password-stdin >/dev/null
rss() { awk '/^VmRSS/{printf "%.1f MB", $2/1024}' /proc/$PID/status; }
hwm() { awk '/^VmHWM/{printf "%.1f MB", $2/1024}' /proc/$PID/status; }
echo "idle RSS: $(rss)"
echo "baseline (no storm):"
wrk -t1 -c4 -d5s --latency "http://127.0.0.1:$PORT/healthz" | grep -E "Requests/sec|  50%|  99%"
LK_USERNAME=storm@example.com LK_PASSWORD=storm-passphrase-1 \
  wrk -t2 -c256 -d20s --timeout 30s --latency -s "$ROOT/bench/wrk/password.lua" \
  "http://127.0.0.1:$PORT/oauth2/token" >"$DIR/storm.txt" &
STORM=$!
sleep 5
echo "during the storm, /healthz:"
wrk -t1 -c4 -d5s --latency "http://127.0.0.1:$PORT/healthz" | grep -E "Requests/sec|  50%|  99%|Non-2xx"
echo "during the storm, /.well-known/jwks.json:"
wrk -t1 -c4 -d5s --latency "http://127.0.0.1:$PORT/.well-known/jwks.json" | grep -E "Requests/sec|  50%|  99%|Non-2xx"
wait $STORM
echo "the storm (256 connections, password grant):"
grep -E "Requests/sec|  50%|  99%|Non-2xx|Socket" "$DIR/storm.txt" || true
echo "RSS after the storm: $(rss); peak RSS: $(hwm)"
