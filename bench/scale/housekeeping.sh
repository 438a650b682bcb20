#!/usr/bin/env bash
# Housekeeping under write load: ROWS expired refresh-token families and ROWS expired
# revocation-log entries (bench/seed), then a server start (housekeeping runs at start-up and
# hourly) with THREADS chained refresh rotations (bench/scale/write_load.py) running until
# the purge has finished and SETTLE seconds after. Reports, per binary, how long the purge
# took and the rotations' latency and errors during it and after it.
#
# Usage: bench/scale/housekeeping.sh OUTDIR LABEL=BINARY [LABEL=BINARY ...]
#   e.g. bench/scale/housekeeping.sh /tmp/hk before=/work/before/latchkey after=target/release/latchkey
# Environment: BACKEND=sqlite (or postgres) ROWS=1000000 THREADS=8 SETTLE=10 ROUNDS=1 PORT=18377
# The binaries alternate in each round (A B, then B A). Holds /tmp/LK_BENCH_MEASURING while
# the servers run (waits while another session holds it).
set -uo pipefail
. "$(cd "$(dirname "$0")" && pwd)/common.sh"

out=${1:?usage: housekeeping.sh OUTDIR LABEL=BINARY...}
shift
[ $# -ge 1 ] || die "give at least one LABEL=BINARY"
BACKEND=${BACKEND:-sqlite} ROWS=${ROWS:-1000000} THREADS=${THREADS:-8} SETTLE=${SETTLE:-10}
ROUNDS=${ROUNDS:-1}
mkdir -p "$out"
out=$(cd "$out" && pwd)

run_one() { # label bin round
  local label=$1 bin=$2 round=$3 dir purge_start purge_ms now
  dir="$out/$round-$label"
  rm -rf "$dir"; mkdir -p "$dir"
  fresh_database "$BACKEND" "$dir"
  # 1. Fixtures and one refresh token per thread, on an empty database.
  start_server "$bin" "$dir"
  create_fixtures "$bin" "$dir"
  login_tokens "$THREADS" "$dir/tokens"
  stop_server
  # 2. The expired rows.
  "$ROOT/bench/seed/refresh_families.sh" "$DB_URL" "$ROWS" expired >"$dir/seed.log"
  "$ROOT/bench/seed/revocations.sh" "$DB_URL" "$ROWS" access_token expired >>"$dir/seed.log"
  now=$(date +%s)
  # 3. Start: housekeeping begins at once; the load starts as soon as /healthz answers.
  rm -f "$dir/stop" "$dir/mark"
  start_server "$bin" "$dir"
  purge_start=$(date +%s%N)
  python3 "$ROOT/bench/scale/write_load.py" "$BASE" "$dir/tokens" "$dir/stop" "$dir/mark" "$THREADS" \
    >"$dir/load.json" 2>"$dir/load.err" &
  local load=$!
  while [ "$(sql_scalar "SELECT (SELECT count(*) FROM (SELECT 1 FROM refresh_token_families WHERE absolute_expires_at <= $now LIMIT 1) a) + (SELECT count(*) FROM (SELECT 1 FROM revocations WHERE expires_at <= $now LIMIT 1) b)")" != 0 ]; do
    sleep 0.2
    [ $(( ($(date +%s%N) - purge_start) / 1000000000 )) -lt 900 ] || { echo "purge not done in 900 s" >&2; break; }
  done
  purge_ms=$(( ($(date +%s%N) - purge_start) / 1000000 ))
  touch "$dir/mark"
  sleep "$SETTLE"
  touch "$dir/stop"
  wait "$load"
  stop_server
  echo "{\"round\": $round, \"binary\": \"$label\", \"backend\": \"$BACKEND\", \"rows\": $ROWS, \"purge_ms_from_healthz\": $purge_ms, \"load\": $(cat "$dir/load.json")}" |
    tee -a "$out/results.jsonl"
  [ "$BACKEND" = postgres ] && psql -X "$PG_ADMIN_URL" -qtAc "drop database if exists \"$PG_DB\"" >/dev/null
  return 0
}

take_lock "bench/scale/housekeeping.sh ($BACKEND, $ROWS rows)"
{ machine_notes; echo "command: $0 $out $*"; echo "BACKEND=$BACKEND ROWS=$ROWS THREADS=$THREADS SETTLE=$SETTLE"; } | tee "$out/machine.txt"
for round in $(seq "$ROUNDS"); do
  pairs=("$@")
  if [ $((round % 2)) = 0 ]; then
    reversed=(); for ((i = ${#pairs[@]} - 1; i >= 0; i--)); do reversed+=("${pairs[i]}"); done
    pairs=("${reversed[@]}")
  fi
  for pair in "${pairs[@]}"; do
    run_one "${pair%%=*}" "${pair#*=}" "$round"
  done
done
