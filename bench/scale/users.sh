#!/usr/bin/env bash
# The user listing at scale (issue 16): `GET /admin/v1/users` and `latchkey users list` at
# 1k, 100k and 1M users, on SQLite and PostgreSQL. For each database and size: a fresh
# database, `latchkey migrate`, bench/seed/users.sh, then `latchkey serve` with an admin token,
# and each case below timed REPEAT times through the admin API (curl's time_total, a warm-up
# request first) and CLI_REPEAT times through the CLI (the process's wall time: start-up,
# connecting and the migrations check included).
#
# Cases (the seeded population, bench/seed/users.sh: every user member, 1% staff, 0.01% admin,
# 2% inactive, 10% unverified):
#   first page; --role member / staff / admin; --active false / true; --verified false;
#   --active true --verified true; --role member --active false; --email-contains with a
#   substring every user has (example.com) and with one only the last user has (the walk
#   reads every user: no b-tree index serves a substring); the last page by --after (the id
#   of the user before it) and by --offset; the last page of --role member by --after.
#
# Usage: bench/scale/users.sh [OUTDIR]     (default bench/results/scale-users-<time>/)
# Environment (optional):
#   SIZES="1000 100000 1000000"  BACKENDS="sqlite postgres"  REPEAT=9  CLI_REPEAT=3  LIMIT=100
#   BENCH_BIN=target/release/latchkey (a private copy is safer: builds replace it)
#   PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres  PORT=18190
# Holds /tmp/LK_BENCH_MEASURING while it measures (not while it seeds), waiting while another
# session holds it. Results: OUTDIR/results.tsv (backend size case api_median_ms api_max_ms
# cli_median_ms users_returned) and OUTDIR/summary.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SIZES=${SIZES:-"1000 100000 1000000"}
BACKENDS=${BACKENDS:-"sqlite postgres"}
REPEAT=${REPEAT:-9}
CLI_REPEAT=${CLI_REPEAT:-3}
LIMIT=${LIMIT:-100}
BIN=${BENCH_BIN:-"$ROOT/target/release/latchkey"}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=${PORT:-18190}
OUT=${1:-"$ROOT/bench/results/scale-users-$(date -u +%Y%m%dT%H%M%SZ)"}
LOCK=/tmp/LK_BENCH_MEASURING
ADMIN_TOKEN="scale-bench-admin-token-$(head -c12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
BASE="http://127.0.0.1:$PORT"

log() { printf '==> %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in curl psql sqlite3 awk; do command -v "$tool" >/dev/null || die "$tool is required"; done
[ -x "$BIN" ] || die "$BIN is missing (cargo build --release, or set BENCH_BIN)"
mkdir -p "$OUT"

while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^LATCHKEY_' || true)
SERVER_PID="" PG_DB="" HOLD_LOCK=""
cleanup() {
  [ -z "$SERVER_PID" ] || { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
  [ -z "$PG_DB" ] || psql "$PG_ADMIN_URL" -qtAc "drop database if exists \"$PG_DB\" with (force)" >/dev/null 2>&1 || true
  [ -z "$HOLD_LOCK" ] || rm -f "$LOCK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

take_lock() {
  while [ -e "$LOCK" ]; do log "waiting: $(cat "$LOCK")"; sleep 10; done
  echo "bench/scale/users.sh (pid $$): $1, since $(date -u +%H:%M:%S) UTC" >"$LOCK"; HOLD_LOCK=1
}
drop_lock() { rm -f "$LOCK"; HOLD_LOCK=""; }

count_ids() { { grep -o '"id":' "$1" || true; } | wc -l; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "" }'; }
maximum() { sort -g | tail -n1; }

# The user at a 0-based position of the listing order (optionally among a role's users).
user_at() { # backend url position [role]
  local q
  if [ -n "${4:-}" ]; then
    q="SELECT ur.user_id FROM user_roles ur JOIN roles r ON r.id = ur.role_id WHERE r.name = '$4'
       ORDER BY ur.user_created_at, ur.user_id LIMIT 1 OFFSET $3"
  else
    q="SELECT id FROM users ORDER BY created_at, id LIMIT 1 OFFSET $3"
  fi
  case "$1" in
    sqlite) sqlite3 "${2#sqlite://}" "$q" ;;
    postgres) psql "$2" -qtAc "$q" ;;
  esac
}

measure() { # backend size name api_query cli_args...
  local backend=$1 size=$2 name=$3 query=$4; shift 4
  local i code t body="$OUT/last-body.json" api=() cli=() n t0 t1
  curl -s -o "$body" -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/admin/v1/users?$query" >/dev/null
  for i in $(seq "$REPEAT"); do
    read -r code t < <(curl -s -o "$body" -w '%{http_code} %{time_total}\n' \
      -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/admin/v1/users?$query")
    [ "$code" = 200 ] || die "$name: GET /admin/v1/users?$query answered $code: $(head -c 300 "$body")"
    api+=("$(awk -v t="$t" 'BEGIN { printf "%.2f", t * 1000 }')")
  done
  n=$(count_ids "$body")
  for i in $(seq "$CLI_REPEAT"); do
    t0=$(date +%s.%N)
    "$BIN" users list --json --limit "$LIMIT" "$@" >"$OUT/last-cli.json" 2>"$OUT/last-cli.err" ||
      die "$name: latchkey users list $*: $(cat "$OUT/last-cli.err")"
    t1=$(date +%s.%N)
    cli+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
  done
  [ "$(count_ids "$OUT/last-cli.json")" = "$n" ] || die "$name: the CLI and the API listed different counts"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$backend" "$size" "$name" \
    "$(printf '%s\n' "${api[@]}" | median)" "$(printf '%s\n' "${api[@]}" | maximum)" \
    "$(printf '%s\n' "${cli[@]}" | median)" "$n" | tee -a "$OUT/results.tsv" >&2
}

run_size() { # backend size
  local backend=$1 size=$2 dir="$OUT/$1-$2" url last_after role_after rare
  mkdir -p "$dir"
  case "$backend" in
    sqlite) url="sqlite://$dir/latchkey.db" ;;
    postgres)
      PG_DB="lk_bench_scale_users_${size}_$$"
      psql "$PG_ADMIN_URL" -qtAc "create database \"$PG_DB\"" >/dev/null
      url="${PG_ADMIN_URL%/*}/$PG_DB" ;;
    *) die "unknown backend $backend" ;;
  esac
  export LATCHKEY_DATABASE_URL=$url LATCHKEY_MASTER_KEY
  LATCHKEY_MASTER_KEY=$(head -c32 /dev/urandom | base64)
  (cd "$dir" && "$BIN" migrate >/dev/null) || die "migrate failed on $url"
  log "[$backend $size] seeding"
  nice -n 10 "$ROOT/bench/seed/users.sh" "$url" "$size" 2>"$dir/seed.log" || { cat "$dir/seed.log" >&2; die "seeding failed"; }
  tail -n1 "$dir/seed.log" >&2
  last_after=$(user_at "$backend" "$url" $((size - LIMIT - 1)))
  role_after=$(user_at "$backend" "$url" $((size - LIMIT - 1)) member)
  rare=$(printf 'seed-%09d@' "$size")
  (cd "$dir" && LATCHKEY_BIND="127.0.0.1:$PORT" LATCHKEY_ADMIN_TOKEN="$ADMIN_TOKEN" LATCHKEY_LOG_LEVEL=warn \
    exec "$BIN" serve) >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 300); do curl -fs -o /dev/null "$BASE/healthz" && break; sleep 0.1; done
  curl -fs -o /dev/null "$BASE/healthz" || die "the server did not start (see $dir/server.log)"
  take_lock "users listing, $backend $size"
  measure "$backend" "$size" "first page" "limit=$LIMIT"
  measure "$backend" "$size" "role member (all)" "limit=$LIMIT&role=member" --role member
  measure "$backend" "$size" "role staff (1%)" "limit=$LIMIT&role=staff" --role staff
  measure "$backend" "$size" "role admin (0.01%)" "limit=$LIMIT&role=admin" --role admin
  measure "$backend" "$size" "inactive (2%)" "limit=$LIMIT&active=false" --active false
  measure "$backend" "$size" "active" "limit=$LIMIT&active=true" --active true
  measure "$backend" "$size" "unverified (10%)" "limit=$LIMIT&verified=false" --verified false
  measure "$backend" "$size" "active and verified" "limit=$LIMIT&active=true&verified=true" --active true --verified true
  measure "$backend" "$size" "role member, inactive" "limit=$LIMIT&role=member&active=false" --role member --active false
  measure "$backend" "$size" "email contains (every user)" "limit=$LIMIT&email_contains=example.com" --email-contains example.com
  measure "$backend" "$size" "email contains (the last user only)" "limit=$LIMIT&email_contains=$rare" --email-contains "$rare"
  measure "$backend" "$size" "last page, --after" "limit=$LIMIT&after=$last_after" --after "$last_after"
  measure "$backend" "$size" "last page, --offset" "limit=$LIMIT&offset=$((size - LIMIT))" --offset $((size - LIMIT))
  measure "$backend" "$size" "role member, last page, --after" "limit=$LIMIT&role=member&after=$role_after" --role member --after "$role_after"
  drop_lock
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  if [ "$backend" = postgres ]; then
    psql "$PG_ADMIN_URL" -qtAc "drop database if exists \"$PG_DB\" with (force)" >/dev/null; PG_DB=""
  else
    rm -f "$dir"/latchkey.db*
  fi
}

{
  echo "binary: $BIN, sha256 $(sha256sum "$BIN" | cut -c1-16), git $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "nproc: $(nproc); cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "sizes: $SIZES; backends: $BACKENDS; limit $LIMIT; API repeats $REPEAT (median, max), CLI repeats $CLI_REPEAT (median)"
  echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt" >&2
: >"$OUT/results.tsv"
for backend in $BACKENDS; do
  for size in $SIZES; do run_size "$backend" "$size"; done
done

{
  echo "## bench/scale/users.sh"
  echo
  sed 's/^/    /' "$OUT/machine.txt"
  echo
  for backend in $BACKENDS; do
    echo "### $backend: GET /admin/v1/users, median (max) ms; CLI median ms"
    echo
    printf '| case |'; for size in $SIZES; do printf ' %s API | %s CLI |' "$size" "$size"; done; echo
    printf '|---|'; for _ in $SIZES; do printf -- '---:|---:|'; done; echo
    awk -F'\t' -v b="$backend" '$1 == b && !seen[$3]++ { print $3 }' "$OUT/results.tsv" | while IFS= read -r c; do
      printf '| %s |' "$c"
      for size in $SIZES; do
        awk -F'\t' -v b="$backend" -v s="$size" -v c="$c" \
          '$1 == b && $2 == s && $3 == c { printf " %s (%s) | %s |", $4, $5, $6; f = 1 } END { if (!f) printf " | |" }' "$OUT/results.tsv"
      done
      echo
    done
    echo
  done
} >"$OUT/summary.md"
cat "$OUT/summary.md"
log "results in $OUT"
