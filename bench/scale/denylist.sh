#!/usr/bin/env bash
# The embedded denylist at scale: ENTRIES live revocation-log entries of KIND (bench/seed),
# then a server start on them (Redis off). Reports, per binary: the time from launch to the
# first /healthz answer (serving), to /readyz 200 (the denylist loaded), the RSS once loaded
# minus the RSS of the same binary on the same database with the log emptied (what the
# entries cost), and the CPU the idle server uses over IDLE seconds.
#
# Usage: bench/scale/denylist.sh OUTDIR LABEL=BINARY [LABEL=BINARY ...]
# Environment: ENTRIES=1000000 KINDS="access_token user" IDLE=30 ROUNDS=1 PORT=18377
# SQLite database (the log is read the same way from PostgreSQL). Binaries alternate per
# round. Holds /tmp/LK_BENCH_MEASURING while servers run.
set -uo pipefail
. "$(cd "$(dirname "$0")" && pwd)/common.sh"

out=${1:?usage: denylist.sh OUTDIR LABEL=BINARY...}
shift
[ $# -ge 1 ] || die "give at least one LABEL=BINARY"
ENTRIES=${ENTRIES:-1000000} KINDS=${KINDS:-access_token user} IDLE=${IDLE:-30} ROUNDS=${ROUNDS:-1}
mkdir -p "$out"
out=$(cd "$out" && pwd)

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$SERVER_PID/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

measure() { # label bin dir -> one JSON object on stdout
  local label=$1 bin=$2 dir=$3 healthz_ms ready_ms rss t0 c0 c1 hz
  LATCHKEY_BIND="127.0.0.1:$PORT"
  local launched=$(date +%s%N)
  (cd "$dir" && exec "$bin" serve) >>"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  until curl -fs -o /dev/null "$BASE/healthz"; do
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server exited (see $dir/server.log)"
    sleep 0.01
  done
  healthz_ms=$(ms_since "$launched")
  until curl -fs -o /dev/null "$BASE/readyz"; do sleep 0.01; done
  ready_ms=$(ms_since "$launched")
  sleep 2
  rss=$(rss_kb)
  hz=$(getconf CLK_TCK)
  c0=$(cpu_ticks); sleep "$IDLE"; c1=$(cpu_ticks)
  stop_server
  echo "{\"healthz_ms\": $healthz_ms, \"ready_ms\": $ready_ms, \"rss_kb\": $rss, \"idle_cpu_pct\": $(awk -v d=$((c1 - c0)) -v hz="$hz" -v s="$IDLE" 'BEGIN{printf "%.2f", 100 * d / hz / s}')}"
}

run_one() { # label bin round kind
  local label=$1 bin=$2 round=$3 kind=$4 dir full empty
  dir="$out/$round-$label-$kind"
  rm -rf "$dir"; mkdir -p "$dir"
  fresh_database sqlite "$dir"
  start_server "$bin" "$dir"
  stop_server
  "$ROOT/bench/seed/revocations.sh" "$DB_URL" "$ENTRIES" "$kind" live >"$dir/seed.log"
  full=$(measure "$label" "$bin" "$dir")
  sql_scalar "DELETE FROM revocations" >/dev/null
  empty=$(measure "$label" "$bin" "$dir")
  echo "{\"round\": $round, \"binary\": \"$label\", \"kind\": \"$kind\", \"entries\": $ENTRIES, \"loaded\": $full, \"empty\": $empty}" |
    tee -a "$out/results.jsonl"
}

take_lock "bench/scale/denylist.sh ($ENTRIES entries)"
{ machine_notes; echo "command: $0 $out $*"; echo "ENTRIES=$ENTRIES KINDS=$KINDS IDLE=$IDLE"; } | tee "$out/machine.txt"
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
