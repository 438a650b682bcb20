#!/usr/bin/env bash
# The Redis denylist's refill: ENTRIES live revocation-log entries of KIND (bench/seed), an
# empty private Redis, then a server start with the Redis denylist. Reports, per binary and
# kind, the time from launch until the refill is complete (the `cursor` key exists: checks
# are served from then on) and the keys Redis then holds.
#
# Usage: bench/scale/redis_refill.sh OUTDIR LABEL=BINARY [LABEL=BINARY ...]
# Environment: ENTRIES=1000000 KINDS="access_token user" BACKEND=sqlite ROUNDS=1
#   REDIS_PORT=6390 (a private redis-server is started there and stopped at the end) PORT=18377
# Binaries alternate per round. Holds /tmp/LK_BENCH_MEASURING while servers run.
set -uo pipefail
. "$(cd "$(dirname "$0")" && pwd)/common.sh"

out=${1:?usage: redis_refill.sh OUTDIR LABEL=BINARY...}
shift
[ $# -ge 1 ] || die "give at least one LABEL=BINARY"
ENTRIES=${ENTRIES:-1000000} KINDS=${KINDS:-access_token user} BACKEND=${BACKEND:-sqlite}
ROUNDS=${ROUNDS:-1} REDIS_PORT=${REDIS_PORT:-6390}
mkdir -p "$out"
out=$(cd "$out" && pwd)
PREFIX="lk_scale:"
rcli() { redis-cli -p "$REDIS_PORT" "$@"; }

run_one() { # label bin round kind
  local label=$1 bin=$2 round=$3 kind=$4 dir launched refill_ms keys
  dir="$out/$round-$label-$kind"
  rm -rf "$dir"; mkdir -p "$dir"
  fresh_database "$BACKEND" "$dir"
  unset LATCHKEY_REDIS_URL LATCHKEY_REDIS_KEY_PREFIX
  start_server "$bin" "$dir"
  stop_server
  "$ROOT/bench/seed/revocations.sh" "$DB_URL" "$ENTRIES" "$kind" live >"$dir/seed.log"
  rcli FLUSHALL >/dev/null
  launched=$(date +%s%N)
  (cd "$dir" && exec env LATCHKEY_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" \
    LATCHKEY_REDIS_KEY_PREFIX="$PREFIX" "$bin" serve) >>"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  until [ "$(rcli EXISTS "${PREFIX}cursor")" = 1 ]; do
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited (see $dir/server.log)"
    [ $(( ($(date +%s%N) - launched) / 1000000000 )) -lt 600 ] || die "no refill in 600 s"
    sleep 0.02
  done
  refill_ms=$(( ($(date +%s%N) - launched) / 1000000 ))
  keys=$(rcli DBSIZE)
  stop_server
  [ "$BACKEND" = postgres ] && psql -X "$PG_ADMIN_URL" -qtAc "drop database if exists \"$PG_DB\"" >/dev/null
  echo "{\"round\": $round, \"binary\": \"$label\", \"kind\": \"$kind\", \"backend\": \"$BACKEND\", \"entries\": $ENTRIES, \"refill_ms_from_launch\": $refill_ms, \"redis_keys\": $keys}" |
    tee -a "$out/results.jsonl"
}

take_lock "bench/scale/redis_refill.sh ($ENTRIES entries, redis :$REDIS_PORT)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --maxmemory-policy noeviction --daemonize yes --pidfile "$out/redis.pid" >/dev/null ||
  die "cannot start redis-server on port $REDIS_PORT"
trap 'rm -f "$LOCK"; stop_server; kill "$(cat "$out/redis.pid" 2>/dev/null)" 2>/dev/null' EXIT
for _ in $(seq 50); do [ "$(rcli PING 2>/dev/null)" = PONG ] && break; sleep 0.1; done
{ machine_notes; echo "command: $0 $out $*"; echo "ENTRIES=$ENTRIES KINDS=$KINDS BACKEND=$BACKEND"; } | tee "$out/machine.txt"
for round in $(seq "$ROUNDS"); do
  pairs=("$@")
  if [ $((round % 2)) = 0 ]; then
    reversed=(); for ((i = ${#pairs[@]} - 1; i >= 0; i--)); do reversed+=("${pairs[i]}"); done
    pairs=("${reversed[@]}")
  fi
  for kind in $KINDS; do
    for pair in "${pairs[@]}"; do
      run_one "${pair%%=*}" "${pair#*=}" "$round" "$kind"
    done
  done
done
