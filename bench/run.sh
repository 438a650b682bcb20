#!/usr/bin/env bash
# Latchkey load benchmarks (see BENCHMARKS.md for results and how to read them).
#
# For each backend (SQLite, PostgreSQL, PostgreSQL with the Redis denylist): starts `latchkey serve` on a fresh database, creates
# fixtures with the CLI, records idle RSS, then runs each scenario with wrk and records
# requests/s, p50, p99, non-2xx, socket errors and peak RSS. Between the two backends it
# measures the raw argon2id verification rate (bench/argon2_rate.rs), the password grant's
# ceiling. Raw outputs go to bench/results/<run id>/ (git-ignored); a Markdown summary is
# printed at the end and saved as summary.md there.
#
# Usage: bench/run.sh                 (from any directory)
# Environment (all optional):
#   PASSES=3                 passes per scenario; the median pass (by requests/s) is reported
#   DURATION=10s THREADS=2 CONNECTIONS=64 WRK_TIMEOUT=10s
#   BACKENDS="sqlite postgres postgres-redis"   (<db>-redis: the Redis denylist at REDIS_URL)
#   SCENARIOS="password refresh refresh_retry client_credentials jwks introspect revoke me
#              reset_request authorize_code sign_in_page authorize_code_100k"
#                            The browser sign-in (the authorization code flow, issue 12):
#                            authorize_code: the signed-in round trip (bench/wrk/authorize_code.lua)
#                             - GET /oauth2/authorize with the SSO session cookie of one sign-in
#                             (GET + POST /login with curl before the scenario), a 302 with a code
#                             for a first-party public client, then POST /oauth2/token with that
#                             code and the PKCE verifier; counted when the token answer is 200.
#                             It runs twice: authorize_code_rs256 (the client's ID token alg
#                             RS256, the default) and authorize_code_es256 (a second client with
#                             --id-token-alg ES256); either name may also be given alone. Before
#                             it, the session store is filled up to SESSIONS_BASE live sessions.
#                            sign_in_page: POST /login (the hosted form, no pending request: a 303
#                             to /account with a session cookie), argon2-bound like password and
#                             reported against the same ceiling; one CSRF cookie and token pair
#                             (a MAC of the cookie, reusable) serves every request.
#                            authorize_code_100k: authorize_code_rs256 again after filling the
#                             session store up to SESSIONS_LARGE live sessions (rows of
#                             sso_sessions, one seeded user each, or the Redis keys of the Redis
#                             session store on <db>-redis), to compare with authorize_code_rs256.
#                            Seeded sessions are inserted with SQL (sqlite3, psql) or a
#                            redis-cli --pipe, in the store's own format; the Redis ones are
#                            deleted (the run's key prefix, sso: keys) when the backend ends.
#                            The browser sign-in happens after the idle RSS is taken (it runs an
#                            argon2 verification in the server); the RSS after it is reported
#                            apart. The summary adds a table of completed round trips (token
#                            200s) or sign-ins (303s) per second, and the failures, per scenario.
#                            Not in the default list (they seed MFA_USERS users and mint a token
#                            per user before each pass), the MFA grant (issue 15):
#                            mfa: POST /oauth2/token grant_type=urn:latchkey:params:oauth:grant-type:mfa
#                             with an mfa_token and the user's TOTP code (bench/wrk/mfa.lua). Each
#                             token is single use and each (factor, 30 s step) code is accepted
#                             once, so every request is a user of its own: MFA_USERS users with a
#                             confirmed TOTP factor are seeded in SQL by bench/mfa_fixture.rs
#                             (secrets sealed under the run's master key by the library's
#                             TotpVault), and before each pass the same tool signs them in through
#                             the server's password grant (403 mfa_required, one mfa_token each)
#                             and writes each token with its user's codes for the coming steps.
#                             The server runs this scenario with MFA_ENV (a cheap argon2id, so that
#                             minting 10^5 tokens takes seconds; the seeded hash uses the same
#                             parameters): the pass itself runs no argon2, and measures the MFA
#                             grant alone (token opened and taken, throttle, TOTP check and step
#                             taken, audit, tokens issued). A pass waits until the time step has
#                             moved past every step a previous pass (or the seeding) could use.
#                             The summary adds the 200/s and the failures (mfa-chain line).
#                            password_mfa: the password grant of a user with a confirmed TOTP
#                             factor (bench-mfa-000000@example.com, default argon2id), answered
#                             403 mfa_required with an mfa_token: argon2-bound like password and
#                             reported against the same ceiling (its 403s are the expected answer,
#                             counted as non-2xx by wrk).
#   MFA_USERS=80000          users seeded for mfa (and the most requests one pass can make)
#   MFA_ENV="LATCHKEY_ARGON2_MEMORY_KIB=64 LATCHKEY_ARGON2_ITERATIONS=1 LATCHKEY_ARGON2_PARALLELISM=1"
#                             server settings for the mfa scenario only (restarted with them, as
#                             RESET_ENV); the seeded users' hash is made with the same parameters
#   MFA_MINT_CONCURRENCY=32  concurrent password grants while minting mfa_tokens
#   BENCH_MFA_FIXTURE_BIN=   the fixture tool (default target/release/examples/mfa_fixture)
#   SESSIONS_BASE=100 SESSIONS_LARGE=100000
#   REDIS_URL=redis://127.0.0.1:6379
#   MINT_DURATION=4s          how long the revoke scenario mints tokens before each pass
#   PORT=18090
#   PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres
#   DB_MAX_CONNECTIONS=       passed to the server as LATCHKEY_DATABASE_MAX_CONNECTIONS
#                             (unset: the server's default, 16)
#   LOAD_ENV="LATCHKEY_THROTTLE_USER_REQUESTS_PER_MINUTE=100000000 ..."
#                             the request limits per session, subject and client (throttle.*,
#                             README) raised far above what wrk sends from one client and a few
#                             sessions, so each request still pays for its check but none is
#                             refused; set LOAD_ENV= for a binary that predates these settings
#   SERVER_ENV=               "LATCHKEY_NAME=value ..." more server settings (diagnosis, e.g.
#                             LATCHKEY_WORKERS=1); recorded in machine.txt
#   SEED_TOKENS=200           logins made before each refresh pass, split between wrk threads
#   REFRESH_RETRIES=9         refresh_retry (issue 14's grace window): a second public client,
#                             web-grace (--refresh-grace-secs 300 --refresh-grace-uses 100),
#                             whose chains each rotate once and then present the token just
#                             used REFRESH_RETRIES more times (retries answered with the same
#                             successor; bench/wrk/refresh_retry.lua); SEED_TOKENS chains. After
#                             each pass the refresh_token_retry audit rows are counted against
#                             the retries wrk saw answered with the same successor
#   RESET_USERS=250           users created for reset_request (reset-NNNNN@example.com); it
#                             cycles over twice as many addresses, every other one without an
#                             account (nobody-NNNNN@example.com)
#   RESET_ENV="LATCHKEY_THROTTLE_ENABLED=false"
#                             server settings for the reset_request scenario only (the server is
#                             restarted with them on the same database, and back without them
#                             for a later scenario): the throttle allows one IP 50 reset
#                             requests a day, so with it on the scenario would measure 429s
#                             The deferred account work is bounded per instance (512 at once);
#                             past it the server answers 503 temporarily_unavailable with
#                             Retry-After: 1, expected under wrk's overload: reset_request counts
#                             202s, 503s and other answers apart (bench/wrk/reset_request.lua) and
#                             reports the 202 rate, outbox files against the 202s for existing
#                             users (audit rows that found an account) and background failures
#   MAIL_DRAIN_WAIT=120       after each reset_request pass, wait up to this many seconds for
#                             the background work (audit rows, reset tokens, outbox files) to stop
#   PG_DB_SETTINGS=           "name=value ..." applied with ALTER DATABASE to the run's own
#                             PostgreSQL database (diagnosis only, e.g. synchronous_commit=off)
#   SKIP_BUILD=1              use the binaries already in target/release
#   BENCH_BIN=, BENCH_ARGON2_BIN=
#                             run these binaries instead (a private copy: other sessions'
#                             builds replace target/release/latchkey mid-run); their sha256 is
#                             recorded in machine.txt
#   ARGON2=0                  skip the argon2 ceiling
#   QUIET_WAIT=180            before each pass, wait up to this many seconds for the machine to
#                             be quiet (under QUIET_CORES=0.3 cores busy over 2 s while the server
#                             is idle); the other sessions' builds share these 2 cores. 0: no wait.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"

PASSES=${PASSES:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
WRK_TIMEOUT=${WRK_TIMEOUT:-10s}
BACKENDS=${BACKENDS:-"sqlite postgres postgres-redis"}
SCENARIOS=${SCENARIOS:-"password refresh refresh_retry client_credentials jwks introspect revoke me reset_request authorize_code sign_in_page authorize_code_100k"}
# authorize_code is the pair of its two ID token algorithms.
SCENARIOS=$(for s in $SCENARIOS; do
  case "$s" in authorize_code) echo authorize_code_rs256 authorize_code_es256 ;; *) echo "$s" ;; esac
done | paste -sd' ')
SESSIONS_BASE=${SESSIONS_BASE:-100}
SESSIONS_LARGE=${SESSIONS_LARGE:-100000}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
MINT_DURATION=${MINT_DURATION:-4s}
MFA_USERS=${MFA_USERS:-80000}
MFA_ENV=${MFA_ENV-"LATCHKEY_ARGON2_MEMORY_KIB=64 LATCHKEY_ARGON2_ITERATIONS=1 LATCHKEY_ARGON2_PARALLELISM=1"}
MFA_MINT_CONCURRENCY=${MFA_MINT_CONCURRENCY:-32}
PORT=${PORT:-18090}
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB_MAX_CONNECTIONS=${DB_MAX_CONNECTIONS:-}
SEED_TOKENS=${SEED_TOKENS:-200}
REFRESH_RETRIES=${REFRESH_RETRIES:-9}
PG_DB_SETTINGS=${PG_DB_SETTINGS:-}
SERVER_ENV=${SERVER_ENV:-}
LOAD_ENV=${LOAD_ENV-"LATCHKEY_THROTTLE_USER_REQUESTS_PER_MINUTE=100000000 LATCHKEY_THROTTLE_CLIENT_REQUESTS_PER_MINUTE=100000000 LATCHKEY_THROTTLE_REVOCATIONS_PER_CLIENT_PER_MINUTE=100000000 LATCHKEY_THROTTLE_INTROSPECTIONS_PER_CLIENT_PER_MINUTE=100000000"}
RESET_USERS=${RESET_USERS:-250}
RESET_ENV=${RESET_ENV-LATCHKEY_THROTTLE_ENABLED=false}
MAIL_DRAIN_WAIT=${MAIL_DRAIN_WAIT:-120}
ARGON2=${ARGON2:-1}
QUIET_WAIT=${QUIET_WAIT:-180}
QUIET_CORES=${QUIET_CORES:-0.3}

BASE="http://127.0.0.1:$PORT"
USER_EMAIL="bench@example.com"
USER_PASSWORD="correct-horse-battery-staple-1"
# The browser sign-in's clients and their fixed PKCE verifier (the challenge is computed).
SPA_REDIRECT_URI="http://127.0.0.1:9/cb"
CODE_VERIFIER="bench-pkce-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
BIN=${BENCH_BIN:-"$ROOT/target/release/latchkey"}
ARGON2_BIN=${BENCH_ARGON2_BIN:-"$ROOT/target/release/examples/argon2_rate"}
MFA_FIXTURE_BIN=${BENCH_MFA_FIXTURE_BIN:-"$ROOT/target/release/examples/mfa_fixture"}
MFA_PASSWORD="correct-horse-battery-staple-2"
CLK_TCK=$(getconf CLK_TCK)

RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
OUT="$BENCH/results/$RUN_ID"
mkdir -p "$OUT"

log() { printf '==> %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# wrk comes from Debian's package; installed here when missing (root, or sudo).
if ! command -v wrk >/dev/null && command -v apt-get >/dev/null; then
  log "installing wrk"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
for tool in wrk curl psql awk getconf openssl; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

# The server rejects unknown LATCHKEY_* variables, and stray ones would change what is measured.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^LATCHKEY_' || true)
# A development shell's RUST_BACKTRACE=1 makes every error capture a backtrace (anyhow), which
# is costly when errors are many (reset_request); production runs without it. Recorded in
# machine.txt; BENCH_RUST_BACKTRACE=1 keeps it for the server.
RUST_BACKTRACE_WAS=${RUST_BACKTRACE:-unset}
[ -n "${BENCH_RUST_BACKTRACE:-}" ] && export RUST_BACKTRACE="$BENCH_RUST_BACKTRACE" ||
  unset RUST_BACKTRACE RUST_LIB_BACKTRACE

SERVER_PID=""
PG_DB=""
SAMPLER_PIDS=()
CHILD_PID=""

# Runs a long command in the background and waits for it, so that a signal reaches the trap
# at once (bash defers traps until a foreground command ends) and cleanup can stop it.
run_child() {
  local rc=0
  "$@" &
  CHILD_PID=$!
  wait "$CHILD_PID" || rc=$?
  CHILD_PID=""
  return "$rc"
}

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

drop_pg_db() {
  if [ -n "$PG_DB" ]; then
    psql "$PG_ADMIN_URL" -qtAc "drop database if exists \"$PG_DB\" with (force)" >/dev/null 2>&1 ||
      log "could not drop database $PG_DB"
    PG_DB=""
  fi
}

cleanup() {
  local pid
  if [ -n "$CHILD_PID" ]; then kill "$CHILD_PID" 2>/dev/null || true; fi
  for pid in "${SAMPLER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_server
  drop_pg_db
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- measurements --------------------------------------------------------------------------

status_kb() { # pid field -> kB
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

kb_to_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

proc_ticks() { # pid -> utime+stime in clock ticks
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

postgres_ticks() { # all processes of user postgres
  local total=0 pid t
  for pid in $(ps -u postgres -o pid= 2>/dev/null); do
    t=$(proc_ticks "$pid"); total=$((total + t))
  done
  echo "$total"
}

busy_ticks() { # all CPUs, non-idle ticks (user nice system irq softirq steal)
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# Waits until the machine is quiet (nothing of ours runs between passes), so that another
# process's burst does not land in a pass. Logs, and notes in the results, when it gives up.
wait_quiet() { # label
  local waited=0 b0 b1 cores
  [ "$QUIET_WAIT" -gt 0 ] || return 0
  while :; do
    b0=$(busy_ticks); sleep 2; b1=$(busy_ticks)
    cores=$(awk -v d="$((b1 - b0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d / hz / 2 }')
    if awk -v c="$cores" -v q="$QUIET_CORES" 'BEGIN { exit !(c <= q) }'; then
      [ "$waited" -eq 0 ] || log "quiet after ${waited}s ($cores cores busy)"
      return 0
    fi
    if [ "$waited" -ge "$QUIET_WAIT" ]; then
      log "warning: still $cores cores busy after ${waited}s; running $1 anyway"
      echo "$1: started with $cores cores busy by other processes" >>"$OUT/notes"
      return 0
    fi
    [ "$waited" -gt 0 ] || log "waiting for the machine to be quiet ($cores cores busy)"
    sleep 3; waited=$((waited + 5))
  done
}

# Prints: requests/s p50_ms p99_ms non2xx socket_errors requests
parse_wrk() {
  awk '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
      if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
      if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
      return v + 0
    }
    /^ +50% / { p50 = ms($2) }
    /^ +99% / { p99 = ms($2) }
    /requests in/ { reqs = $1 }
    /^Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { non = $NF }
    /Socket errors:/ { gsub(",", ""); se = $4 + $6 + $8 + $10 }
    END { printf "%.1f %.3f %.3f %d %d %d\n", rps, p50, p99, non, se, reqs }
  ' "$1"
}

# --- server --------------------------------------------------------------------------------

# Settings a scenario needs on top of SERVER_ENV (the server is restarted with them).
scenario_env() { # scenario
  case "$1" in
    reset_request) echo "$RESET_ENV" ;;
    mfa) echo "$MFA_ENV" ;;
  esac
}

start_server() { # backend dir: a fresh database, then the server
  local backend=$1 dir=$2 url kv
  unset LATCHKEY_REDIS_URL LATCHKEY_REDIS_KEY_PREFIX
  case "$backend" in
    *-redis)
      export LATCHKEY_REDIS_URL="$REDIS_URL"
      export LATCHKEY_REDIS_KEY_PREFIX="lk_bench_${RUN_ID}_$$:"
      ;;
  esac
  case "${backend%-redis}" in
    sqlite) url="sqlite://$dir/latchkey.db" ;;
    postgres)
      PG_DB="lk_bench_$(echo "$RUN_ID" | tr 'A-Z' 'a-z')_$$"
      psql "$PG_ADMIN_URL" -qtAc "create database \"$PG_DB\"" >/dev/null ||
        die "cannot create database $PG_DB (is PostgreSQL running at $PG_ADMIN_URL?)"
      for kv in $PG_DB_SETTINGS; do
        psql "$PG_ADMIN_URL" -qtAc "alter database \"$PG_DB\" set ${kv%%=*} = '${kv#*=}'" >/dev/null ||
          die "cannot apply $kv to $PG_DB"
      done
      url="${PG_ADMIN_URL%/*}/$PG_DB"
      ;;
    *) die "unknown backend $backend" ;;
  esac
  export LATCHKEY_BIND="127.0.0.1:$PORT"
  export LATCHKEY_DATABASE_URL="$url"
  LATCHKEY_MASTER_KEY=$(head -c32 /dev/urandom | base64)
  export LATCHKEY_MASTER_KEY
  export LATCHKEY_LOG_LEVEL=warn
  if [ -n "$DB_MAX_CONNECTIONS" ]; then
    export LATCHKEY_DATABASE_MAX_CONNECTIONS="$DB_MAX_CONNECTIONS"
  fi
  # Mail (the outbox transport, the default) goes to the run's own folder.
  export LATCHKEY_MAIL_OUTBOX_DIR="$dir/outbox"
  SERVER_EXTRA_ENV=""
  launch_server "$dir" ""
}

launch_server() { # dir extra_env: starts `latchkey serve` on the database start_server made
  local dir=$1 extra=$2 kv
  if curl -s -o /dev/null "$BASE/healthz"; then
    die "something already listens on 127.0.0.1:$PORT (set PORT)"
  fi
  for kv in $SERVER_EXTRA_ENV; do unset "${kv%%=*}"; done
  for kv in $LOAD_ENV $SERVER_ENV $extra; do
    case "$kv" in LATCHKEY_*=*) export "${kv?}" ;; *) die "server settings: $kv is not LATCHKEY_NAME=value" ;; esac
  done
  SERVER_EXTRA_ENV=$extra
  # The working directory is the run's own, so no ./latchkey.toml is picked up by accident.
  [ -z "$extra" ] || echo "--- restarted with $extra" >>"$dir/server.log"
  (cd "$dir" && exec "$BIN" serve) >>"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 300); do
    if curl -fs -o /dev/null "$BASE/healthz"; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$dir/server.log" >&2; die "the server exited"; }
    sleep 0.1
  done
  die "the server did not become healthy in 30 s (see $dir/server.log)"
}

create_fixtures() { # dir -> sets CLIENT_SECRET
  local dir=$1
  (cd "$dir" &&
    "$BIN" roles create bench-reader --permission reports:read --json &&
    printf '%s\n' "$USER_PASSWORD" |
      "$BIN" users create --email "$USER_EMAIL" --password-stdin --role bench-reader --json &&
    "$BIN" clients create --name web --client-id web --public \
      --grant password --grant refresh_token --scope openid --scope profile --json) \
    >"$dir/fixtures.json" 2>"$dir/fixtures.err" || { cat "$dir/fixtures.err" >&2; die "fixtures failed"; }
  (cd "$dir" && "$BIN" clients create --name billing --client-id billing --confidential \
    --grant client_credentials --scope billing:read --json) >"$dir/billing.json" 2>>"$dir/fixtures.err" ||
    { cat "$dir/fixtures.err" >&2; die "fixtures failed"; }
  CLIENT_SECRET=$(sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' "$dir/billing.json")
  [ -n "$CLIENT_SECRET" ] || die "no client_secret in $dir/billing.json"
  # A resource server that introspects.
  (cd "$dir" && "$BIN" clients create --name rs --client-id rs --confidential \
    --grant client_credentials --scope latchkey.introspect --json) >"$dir/rs.json" 2>>"$dir/fixtures.err" ||
    { cat "$dir/fixtures.err" >&2; die "fixtures failed"; }
  RS_SECRET=$(sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' "$dir/rs.json")
  [ -n "$RS_SECRET" ] || die "no client_secret in $dir/rs.json"
  # Users whose addresses reset_request cycles over (one CLI call each, like the others).
  if [[ " $SCENARIOS " == *" reset_request "* ]]; then
    local i t0=$SECONDS
    for i in $(seq 0 $((RESET_USERS - 1))); do
      printf '%s\n' "$USER_PASSWORD" | (cd "$dir" &&
        "$BIN" users create --email "$(printf 'reset-%05d@example.com' "$i")" --password-stdin --json) \
        >>"$dir/reset_users.json" 2>>"$dir/fixtures.err" || { cat "$dir/fixtures.err" >&2; die "fixtures failed"; }
    done
    log "created $RESET_USERS users for reset_request in $((SECONDS - t0)) s"
  fi
  if [[ " $SCENARIOS " == *" refresh_retry "* ]]; then
    # The grace-window client (issue 14), only when asked for: older binaries lack the flags.
    (cd "$dir" && "$BIN" clients create --name web-grace --client-id web-grace --public \
      --grant password --grant refresh_token --scope openid --scope profile \
      --refresh-grace-secs 300 --refresh-grace-uses 100 --json) >"$dir/web-grace.json" 2>>"$dir/fixtures.err" ||
      { cat "$dir/fixtures.err" >&2; die "fixtures failed"; }
  fi
  if browser_scenarios; then
    # The browser sign-in's first-party public clients, one per ID token algorithm.
    local alg
    for alg in RS256 ES256; do
      (cd "$dir" && "$BIN" clients create --name "bench-spa-${alg,,}" --client-id "bench-spa-${alg,,}" \
        --public --grant authorization_code --grant refresh_token --redirect-uri "$SPA_REDIRECT_URI" \
        --first-party --id-token-alg "$alg" --json) >"$dir/spa-${alg,,}.json" 2>>"$dir/fixtures.err" ||
        { cat "$dir/fixtures.err" >&2; die "fixtures failed"; }
    done
    CODE_CHALLENGE=$(printf '%s' "$CODE_VERIFIER" | openssl dgst -sha256 -binary | base64 -w0 | tr '+/' '-_' | tr -d '=')
  fi
}

browser_scenarios() { [[ " $SCENARIOS " == *" authorize_code"* || " $SCENARIOS " == *" sign_in_page "* ]]; }

# Signs the bench user in through the hosted page, as a browser does: GET /login (the CSRF
# cookie and the form's token), then POST /login. Sets SESSION_COOKIE (name=value) for
# authorize_code, and CSRF_COOKIE / CSRF_TOKEN (the pair, reusable) for sign_in_page.
browser_sign_in() { # dir
  local dir=$1 jar="$1/browser.cookies" code name
  rm -f "$jar"
  curl -sS -c "$jar" -o "$dir/login.html" "$BASE/login" || die "GET /login failed"
  CSRF_TOKEN=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$dir/login.html" | head -n1)
  [ -n "$CSRF_TOKEN" ] || die "no csrf field in $dir/login.html"
  name=$(awk -F'\t' '$6 ~ /latchkey_csrf$/ { print $6; exit }' "$jar")
  [ -n "$name" ] || die "GET /login set no CSRF cookie (see $jar)"
  CSRF_COOKIE="$name=$(awk -F'\t' -v n="$name" '$6 == n { print $7; exit }' "$jar")"
  code=$(curl -sS -b "$jar" -c "$jar" -o "$dir/login-post.html" -w '%{http_code}' -X POST "$BASE/login" \
    --data-urlencode "csrf=$CSRF_TOKEN" --data-urlencode "username=$USER_EMAIL" \
    --data-urlencode "password=$USER_PASSWORD")
  [ "$code" = 303 ] || { cat "$dir/login-post.html" >&2; die "POST /login answered $code, not 303"; }
  SESSION_COOKIE_NAME=$(awk -F'\t' '$6 ~ /latchkey_session$/ { print $6; exit }' "$jar")
  [ -n "$SESSION_COOKIE_NAME" ] || die "POST /login set no session cookie (see $jar)"
  SESSION_COOKIE="$SESSION_COOKIE_NAME=$(awk -F'\t' -v n="$SESSION_COOKIE_NAME" '$6 == n { print $7; exit }' "$jar")"
  log "signed in through /login: session cookie $SESSION_COOKIE_NAME"
}

# Live SSO sessions in the backend's session store (the Redis one on <db>-redis: the sessions
# its expiry index holds).
session_count() { # dir
  local now
  now=$(date +%s)
  case "$BACKEND" in
    *-redis) redis-cli -u "$REDIS_URL" --raw zcount "${LATCHKEY_REDIS_KEY_PREFIX}sso:exp" "($now" +inf ;;
    sqlite) sqlite3 -cmd '.timeout 5000' "$1/latchkey.db" \
        "select count(*) from sso_sessions where idle_expires_at > $now and absolute_expires_at > $now" ;;
    postgres) psql "${PG_ADMIN_URL%/*}/$PG_DB" -qtAc \
        "select count(*) from sso_sessions where idle_expires_at > $now and absolute_expires_at > $now" ;;
  esac
}

# Fills the session store up to `total` live sessions, each of its own user
# (seed-user-N, seed-N@example.invalid; on Redis the user ids name no row), with the default
# lifetimes (8 h idle, 24 h absolute) and no clients. Written the way the store writes a
# session: a row of sso_sessions, or on Redis the session's hash, its secret's index, the
# user's set and the expiry index, with the store's time to live (absolute lifetime + 1 day).
seed_sessions() { # dir total
  local dir=$1 total=$2 have n now first t0=$SECONDS p
  have=$(session_count "$dir")
  n=$((total - have))
  [ "$n" -gt 0 ] || { log "session store holds $have live sessions (wanted $total)"; return 0; }
  now=$(date +%s)
  # Seeded users so far (a second seeding continues the numbering).
  case "$BACKEND" in
    *-redis) first=$(( $(redis-cli -u "$REDIS_URL" --raw get "${LATCHKEY_REDIS_KEY_PREFIX}bench:seeded" || echo 0) + 1 ))
      redis-cli -u "$REDIS_URL" set "${LATCHKEY_REDIS_KEY_PREFIX}bench:seeded" $((first + n - 1)) >/dev/null ;;
    sqlite) first=$(( $(sqlite3 -cmd '.timeout 5000' "$dir/latchkey.db" "select count(*) from users where id like 'seed-user-%'") + 1 )) ;;
    postgres) first=$(( $(psql "${PG_ADMIN_URL%/*}/$PG_DB" -qtAc "select count(*) from users where id like 'seed-user-%'") + 1 )) ;;
  esac
  case "$BACKEND" in
    *-redis)
      p="${LATCHKEY_REDIS_KEY_PREFIX}sso:"
      awk -v first="$first" -v n="$n" -v now="$now" -v p="$p" '
        function resp(argc, a,   i, out) {
          out = "*" argc "\r\n"
          for (i = 1; i <= argc; i++) out = out "$" length(a[i]) "\r\n" a[i] "\r\n"
          printf "%s", out
        }
        BEGIN {
          idle = now + 8 * 3600; abs = now + 24 * 3600; ttl = 24 * 3600 + 86400
          for (i = first; i < first + n; i++) {
            id = sprintf("5eed0000-0000-4000-8000-%012d", i)
            # A 64-hex-digit stand-in for the SHA-256 of a cookie secret (never presented).
            h = sprintf("5eed%060d", i)
            u = "seed-user-" i
            split("HSET|" p "s:" id "|id|" id "|secret_hash|" h "|user_id|" u "|auth_time|" now \
              "|amr|pwd|remember|0|created_at|" now "|last_seen_at|" now "|idle_expires_at|" idle \
              "|absolute_expires_at|" abs "|clients|[]|ip|127.0.0.1|user_agent|wrk", a, "|"); resp(26, a)
            split("EXPIRE|" p "s:" id "|" ttl, a, "|"); resp(3, a)
            split("SET|" p "h:" h "|" id "|EX|" ttl, a, "|"); resp(5, a)
            split("SADD|" p "u:" u "|" id, a, "|"); resp(3, a)
            split("EXPIRE|" p "u:" u "|" ttl, a, "|"); resp(3, a)
            split("ZADD|" p "exp|" idle "|" id, a, "|"); resp(4, a)
          }
          split("EXPIRE|" p "exp|" ttl "|GT", a, "|"); resp(4, a)
        }' | redis-cli -u "$REDIS_URL" --pipe >"$dir/seed-sessions.log" 2>&1 ||
        { cat "$dir/seed-sessions.log" >&2; die "seeding Redis sessions failed"; }
      ;;
    sqlite)
      sqlite3 -cmd '.timeout 30000' "$dir/latchkey.db" "
        begin;
        with recursive g(i) as (select $first union all select i + 1 from g where i < $((first + n - 1)))
        insert into users (id, email, created_at, updated_at)
          select 'seed-user-' || i, 'seed-' || i || '@example.invalid', $now, $now from g;
        with recursive g(i) as (select $first union all select i + 1 from g where i < $((first + n - 1)))
        insert into sso_sessions (id, secret_hash, user_id, auth_time, amr, remember, created_at,
            last_seen_at, idle_expires_at, absolute_expires_at, user_agent, ip, clients)
          select lower(hex(randomblob(16))), lower(hex(randomblob(32))), 'seed-user-' || i, $now, 'pwd', 0,
            $now, $now, $now + 8 * 3600, $now + 24 * 3600, 'wrk', '127.0.0.1', '[]' from g;
        commit;" >"$dir/seed-sessions.log" 2>&1 || { cat "$dir/seed-sessions.log" >&2; die "seeding sessions failed"; }
      ;;
    postgres)
      psql "${PG_ADMIN_URL%/*}/$PG_DB" -v ON_ERROR_STOP=1 -qtA >"$dir/seed-sessions.log" 2>&1 <<SQL ||
        begin;
        insert into users (id, email, created_at, updated_at)
          select 'seed-user-' || g, 'seed-' || g || '@example.invalid', $now, $now
          from generate_series($first, $((first + n - 1))) g;
        insert into sso_sessions (id, secret_hash, user_id, auth_time, amr, remember, created_at,
            last_seen_at, idle_expires_at, absolute_expires_at, user_agent, ip, clients)
          select gen_random_uuid()::text, encode(sha256(('$RUN_ID$$-' || g)::bytea), 'hex'), 'seed-user-' || g,
            $now, 'pwd', false, $now, $now, $now + 8 * 3600, $now + 24 * 3600, 'wrk', '127.0.0.1', '[]'
          from generate_series($first, $((first + n - 1))) g;
        commit;
        analyze users;
        analyze sso_sessions;
SQL
        { cat "$dir/seed-sessions.log" >&2; die "seeding sessions failed"; }
      ;;
  esac
  log "seeded $n sessions in $((SECONDS - t0)) s: $(session_count "$dir") live sessions (wanted $total)"
}

# The Redis keys of the run's sessions (seeded or signed in), removed when the backend ends.
drop_redis_sessions() {
  [ -n "${LATCHKEY_REDIS_KEY_PREFIX:-}" ] || return 0
  redis-cli -u "$REDIS_URL" --scan --pattern "${LATCHKEY_REDIS_KEY_PREFIX}sso:*" |
    xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || log "could not delete the Redis sessions"
  redis-cli -u "$REDIS_URL" del "${LATCHKEY_REDIS_KEY_PREFIX}bench:seeded" >/dev/null 2>&1 || true
}

# --- the MFA grant's fixtures (issue 15) ---------------------------------------------------

# Runs the SQL file on the backend's database.
load_sql() { # dir file
  case "${BACKEND%-redis}" in
    sqlite) sqlite3 -bail -cmd '.timeout 30000' "$1/latchkey.db" <"$2" >/dev/null ;;
    postgres) psql "${PG_ADMIN_URL%/*}/$PG_DB" -X -q -v ON_ERROR_STOP=1 -f "$2" >/dev/null ;;
  esac
}

# The value of LATCHKEY_NAME in MFA_ENV, else the default given.
mfa_env_value() { # NAME default
  local kv v=$2
  for kv in $MFA_ENV; do [ "${kv%%=*}" != "$1" ] || v=${kv#*=}; done
  echo "$v"
}

# Seeds users with a confirmed TOTP factor (bench/mfa_fixture.rs, SQL in the store's format,
# secrets sealed under the server's master key), with the bench user's role.
#   users: MFA_USERS + 1 users mfa-NNNNNN@example.com, hashed with MFA_ENV's argon2id
#          parameters (the mfa scenario's server); the last one is the sanity check's.
#   password: one user bench-mfa-000000@example.com, default argon2id (password_mfa).
seed_mfa() { # dir users|password
  local dir=$1 what=$2 t0=$SECONDS prefix count args=()
  if [ "$what" = users ]; then
    prefix=mfa; count=$((MFA_USERS + 1))
    args=(--memory-kib "$(mfa_env_value LATCHKEY_ARGON2_MEMORY_KIB 19456)"
      --iterations "$(mfa_env_value LATCHKEY_ARGON2_ITERATIONS 2)"
      --parallelism "$(mfa_env_value LATCHKEY_ARGON2_PARALLELISM 1)")
  else
    prefix=bench-mfa; count=1
  fi
  [ ! -s "$dir/$prefix-users.txt" ] || return 0
  [ -x "$MFA_FIXTURE_BIN" ] || die "$MFA_FIXTURE_BIN is missing (cargo build --release --example mfa_fixture)"
  "$MFA_FIXTURE_BIN" seed --backend "${BACKEND%-redis}" --count "$count" --prefix "$prefix" \
    --password "$MFA_PASSWORD" --sql-out "$dir/$prefix-users.sql" --users-out "$dir/$prefix-users.tmp" \
    "${args[@]}" 2>>"$dir/fixtures.err" || { cat "$dir/fixtures.err" >&2; die "mfa_fixture seed failed"; }
  cat >>"$dir/$prefix-users.sql" <<SQL
INSERT INTO user_roles (user_id, role_id, user_created_at)
  SELECT u.id, r.id, u.created_at FROM users u, roles r
  WHERE r.name = 'bench-reader' AND u.email LIKE '$prefix-%@example.com';
SQL
  [ "${BACKEND%-redis}" = sqlite ] || echo "ANALYZE users; ANALYZE mfa_factors; ANALYZE user_roles;" >>"$dir/$prefix-users.sql"
  load_sql "$dir" "$dir/$prefix-users.sql" || die "loading $dir/$prefix-users.sql failed"
  rm -f "$dir/$prefix-users.sql"
  mv "$dir/$prefix-users.tmp" "$dir/$prefix-users.txt"
  if [ "$what" = users ]; then
    head -n "$MFA_USERS" "$dir/mfa-users.txt" >"$dir/mfa-pass-users.txt"
    tail -n 1 "$dir/mfa-users.txt" >"$dir/mfa-sanity-user.txt"
    # Confirmation takes the current step: no code of it or before is accepted.
    MFA_LAST_STEP=$(($(date +%s) / 30))
  fi
  log "seeded $count users with a TOTP factor ($prefix-*) in $((SECONDS - t0)) s"
}

# One mfa_token per user of the users file, with the codes of the coming steps (not timed).
mint_mfa() { # users_file out
  local t0=$SECONDS
  run_child "$MFA_FIXTURE_BIN" mint --base "$BASE" --client-id web --password "$MFA_PASSWORD" \
    --users "$1" --concurrency "$MFA_MINT_CONCURRENCY" --out "$2" 2>"$2.log" ||
    { cat "$2.log" >&2; die "minting mfa_tokens failed"; }
  log "$(tail -n1 "$2.log") (wall $((SECONDS - t0)) s)"
}

# Until the time step is past every step a pass, the seeding or the sanity check used.
wait_mfa_step() {
  local waited=0
  while [ $(($(date +%s) / 30)) -le "${MFA_LAST_STEP:-0}" ]; do sleep 0.5; waited=$((waited + 1)); done
  [ "$waited" -eq 0 ] || log "waited $((waited / 2)) s for a fresh TOTP step"
}

# The code of the current step in a line of a mint file ("token c0 c1 ..."), step0 from its header.
mfa_code_now() { # file line
  local step0 k
  step0=$(sed -n '1s/^# step0 \([0-9]*\) .*/\1/p' "$1")
  k=$(($(date +%s) / 30 - step0))
  printf '%s\n' "$2" | awk -v k="$k" '{ print $(k + 2) }'
}

outbox_count() { # dir -> .eml files written so far
  find "$1/outbox" -name '*.eml' 2>/dev/null | wc -l
}

# Rows of one audit event in the run's database (empty when it cannot be read).
audit_count() { # dir event
  case "${BACKEND%-redis}" in
    sqlite) command -v sqlite3 >/dev/null &&
      sqlite3 -cmd '.timeout 5000' "$1/latchkey.db" \
        "select count(*) from audit_events where event = '$2'" 2>/dev/null || true ;;
    postgres) psql "${PG_ADMIN_URL%/*}/$PG_DB" -qtAc \
        "select count(*) from audit_events where event = '$2'" 2>/dev/null || true ;;
  esac
}

# password_reset_requested rows that found an account (user_id set).
audit_user_count() { # dir
  local q="select count(*) from audit_events where event = 'password_reset_requested' and user_id is not null"
  case "${BACKEND%-redis}" in
    sqlite) command -v sqlite3 >/dev/null && sqlite3 -cmd '.timeout 5000' "$1/latchkey.db" "$q" 2>/dev/null || true ;;
    postgres) psql "${PG_ADMIN_URL%/*}/$PG_DB" -qtAc "$q" 2>/dev/null || true ;;
  esac
}

# After a reset_request pass: waits until the background work has stopped (the outbox and the
# audit count unchanged, and the server under 0.1 core, for 3 s: tasks waiting for a pool
# connection change no count but still fail later), then appends to $dir/reset_request.mail:
#   pass requests existing outbox audit drained full failed unaudited ok202 busy503 other
#   audit_user retry1 failed_pass rate202
# (requests: wrk's count; existing: requests naming a user, as sent; outbox / audit: .eml files
# and password_reset_requested rows added by the pass; drained: seconds the work went on after
# wrk ended; full / failed / unaudited: "mail queue full", "account background step failed" and
# "audit event not stored" in the server log so far; ok202 / busy503 / other: answers by
# status; audit_user: audit rows of the pass that found an account, i.e. 202s for existing
# users whose lookup ran; retry1: 503s with Retry-After: 1; failed_pass: failed background
# steps logged during this pass; rate202: 202s per second of the wrk pass.)
reset_accounting() { # dir pass outbox0 audit0 requests audit_user0 failed0
  local dir=$1 pass=$2 ob0=$3 au0=$4 reqs=$5 auu0=$6 failed0=$7 ob au last="" now t0=$SECONDS quiet=0 existing full failed
  local c0 c1
  c0=$(proc_ticks "$SERVER_PID")
  while :; do
    ob=$(outbox_count "$dir"); au=$(audit_count "$dir" password_reset_requested)
    c1=$(proc_ticks "$SERVER_PID")
    now="$ob/$au"
    if [ "$now" = "$last" ] && [ $((c1 - c0)) -le $((CLK_TCK / 10 + 1)) ]; then quiet=$((quiet + 1)); else quiet=0; last=$now; fi
    c0=$c1
    [ "$quiet" -lt 3 ] || break
    [ $((SECONDS - t0)) -lt "$MAIL_DRAIN_WAIT" ] || { log "warning: reset work still going after ${MAIL_DRAIN_WAIT}s"; break; }
    sleep 1
  done
  local drained=$((SECONDS - t0 - 3)); [ "$drained" -ge 0 ] || drained=0
  local raw="$dir/reset_request.pass$pass.txt" ok202 busy503 other retry1 auu rate202
  rate202=$(sed -n 's/^reset-chain: .*, 202\/s \([0-9.]*\).*/\1/p' "$raw")
  existing=$(sed -n 's/^reset-chain: sent [0-9]*, existing \([0-9]*\),.*/\1/p' "$raw")
  ok202=$(sed -n 's/^reset-chain: .*, 202 \([0-9]*\), .*/\1/p' "$raw")
  busy503=$(sed -n 's/^reset-chain: .*, 503 \([0-9]*\) .*/\1/p' "$raw")
  retry1=$(sed -n 's/^reset-chain: .*(retry-after 1: \([0-9]*\),.*/\1/p' "$raw")
  other=$(sed -n 's/^reset-chain: .*, other \([0-9]*\),.*/\1/p' "$raw")
  auu=$(audit_user_count "$dir")
  full=$(grep -c 'mail queue full' "$dir/server.log" || true)
  failed=$(grep -c 'account background step failed' "$dir/server.log" || true)
  local unaudited
  unaudited=$(grep -c 'audit event not stored' "$dir/server.log" || true)
  echo "$pass $reqs ${existing:-?} $((ob - ob0)) $(( ${au:-0} - ${au0:-0} )) $drained $full $failed $unaudited" \
    "${ok202:-?} ${busy503:-?} ${other:-?} $(( ${auu:-0} - ${auu0:-0} )) ${retry1:-?} $((failed - ${failed0:-0})) ${rate202:-?}" \
    >>"$dir/reset_request.mail"
  log "reset_request pass $pass: $reqs requests (${ok202:-?} answered 202, ${busy503:-?} 503 of which" \
    "${retry1:-?} with Retry-After: 1, ${other:-?} other), ${existing:-?} naming a user;" \
    "202s for users (audit rows with a user) +$(( ${auu:-0} - ${auu0:-0} )); outbox +$((ob - ob0)) files," \
    "audit +$(( ${au:-0} - ${au0:-0} )) rows; work went on ~$drained s after wrk;" \
    "failed background steps this pass $((failed - ${failed0:-0})); server log so far: $full 'mail queue full'," \
    "$failed failed background steps, $unaudited audit events not stored"
}

login() { # [client_id] -> prints the JSON response
  curl -sS -X POST "$BASE/oauth2/token" \
    --data-urlencode grant_type=password --data-urlencode "username=$USER_EMAIL" \
    --data-urlencode "password=$USER_PASSWORD" --data-urlencode "client_id=${1:-${LOGIN_CLIENT_ID:-web}}"
}

# The public client a refresh scenario's tokens belong to.
refresh_client() { # scenario
  case "$1" in
    refresh_retry) echo web-grace ;;
    *) echo web ;;
  esac
}

refresh_once() { # client token -> prints the JSON response
  curl -sS -X POST "$BASE/oauth2/token" --data-urlencode grant_type=refresh_token \
    --data-urlencode "refresh_token=$2" --data-urlencode "client_id=$1"
}

seed_refresh_tokens() { # file count [client_id]
  local file=$1 n=$2 got
  export -f login
  export BASE USER_EMAIL USER_PASSWORD
  seq "$n" | LOGIN_CLIENT_ID="${3:-web}" xargs -P 8 -I{} bash -c 'login; echo' |
    grep -o '"refresh_token":"lkrt_[^"]*"' | sed 's/.*:"\(.*\)"/\1/' >"$file" || true
  got=$(sort -u "$file" | wc -l)
  [ "$got" -eq "$n" ] || die "seeding refresh tokens: wanted $n, got $got"
}

# Access tokens to revoke, minted with wrk (client_credentials) before the pass is timed.
mint_tokens() { # file
  local file=$1
  rm -f "$file" "$file".*
  LK_CLIENT_SECRET="$CLIENT_SECRET" LK_TOKENS_FILE="$file" \
    run_child wrk -t"$THREADS" -c"$CONNECTIONS" -d"$MINT_DURATION" -s "$BENCH/wrk/mint.lua" \
    "$BASE/oauth2/token" >"$file.wrk" 2>&1 || { cat "$file.wrk" >&2; die "minting tokens failed"; }
  cat "$file".[0-9]* >"$file"
  log "minted $(wc -l <"$file") access tokens to revoke"
}

basic_for() { # scenario -> base64 of the Basic credentials it uses
  case "$1" in
    introspect) printf 'rs:%s' "$RS_SECRET" | base64 -w0 ;;
    revoke) printf 'billing:%s' "$CLIENT_SECRET" | base64 -w0 ;;
  esac
}

# One request of each kind must answer 200 before its scenario is timed.
sanity_check() { # scenario dir
  local s=$1 dir=$2 code body rt
  case "$s" in
    password) code=$(curl -s -o "$dir/sanity-$s.json" -w '%{http_code}' -X POST "$BASE/oauth2/token" \
        --data-urlencode grant_type=password --data-urlencode "username=$USER_EMAIL" \
        --data-urlencode "password=$USER_PASSWORD" --data-urlencode client_id=web) ;;
    refresh)
      body=$(login)
      rt=$(printf '%s' "$body" | sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p')
      code=$(curl -s -o "$dir/sanity-$s.json" -w '%{http_code}' -X POST "$BASE/oauth2/token" \
        --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$rt" \
        --data-urlencode client_id=web) ;;
    refresh_retry)
      # A rotation, then the used token again: a retry must answer 200 and the same successor.
      local first again
      rt=$(login web-grace | sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p')
      first=$(refresh_once web-grace "$rt" | sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p')
      code=$(curl -s -o "$dir/sanity-$s.json" -w '%{http_code}' -X POST "$BASE/oauth2/token" \
        --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$rt" \
        --data-urlencode client_id=web-grace)
      again=$(sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p' "$dir/sanity-$s.json")
      [ "$code" != 200 ] || { [ -n "$first" ] && [ "$first" = "$again" ]; } ||
        code="a retry answered another refresh token than the first use" ;;
    client_credentials) code=$(curl -s -o "$dir/sanity-$s.json" -w '%{http_code}' -X POST \
        "$BASE/oauth2/token" --data-urlencode grant_type=client_credentials \
        --data-urlencode client_id=billing --data-urlencode "client_secret=$CLIENT_SECRET") ;;
    jwks) code=$(curl -s -o "$dir/sanity-$s.json" -w '%{http_code}' "$BASE/.well-known/jwks.json") ;;
    introspect)
      ACCESS_TOKEN=$(login | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
      code=$(curl -s -o "$dir/sanity-$s.json" -w '%{http_code}' -u "rs:$RS_SECRET" \
        "$BASE/oauth2/introspect" --data-urlencode "token=$ACCESS_TOKEN")
      grep -q '"active":true' "$dir/sanity-$s.json" || code="inactive" ;;
    revoke) code=$(curl -s -o "$dir/sanity-$s.json" -w '%{http_code}' -u "billing:$CLIENT_SECRET" \
        "$BASE/oauth2/revoke" --data-urlencode "token=not-a-token") ;;
    me)
      ACCESS_TOKEN=$(login | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
      ACCESS_TOKEN_AT=$SECONDS
      code=$(curl -s -o "$dir/sanity-$s.json" -w '%{http_code}' -H "Authorization: Bearer $ACCESS_TOKEN" \
        "$BASE/api/v1/me")
      grep -q '"bench@example.com"' "$dir/sanity-$s.json" || code="not the bench user" ;;
    reset_request)
      local n0 n
      n0=$(outbox_count "$dir")
      code=$(curl -s -o "$dir/sanity-$s.json" -w '%{http_code}' -H 'Content-Type: application/json' \
        -X POST "$BASE/api/v1/password/reset" --data '{"email":"reset-00000@example.com"}')
      [ "$code" != 202 ] || code=200
      # The mail is written by the background task: it must reach the outbox.
      for _ in $(seq 50); do n=$(outbox_count "$dir"); [ "$n" -le "$n0" ] || break; sleep 0.1; done
      [ "$n" -gt "$n0" ] || code="202 but no mail in $dir/outbox" ;;
    authorize_code_*)
      # One round trip; the ID token must be signed with the client's algorithm.
      local client alg loc authz header
      client=$(spa_client "$s"); alg=${client##*-}; alg=${alg^^}
      authz="$BASE/oauth2/authorize?response_type=code&client_id=$client&redirect_uri=$(urlencode "$SPA_REDIRECT_URI")&scope=openid&state=s&code_challenge=$CODE_CHALLENGE&code_challenge_method=S256"
      loc=$(curl -s -o "$dir/sanity-$s.authorize" -w '%{http_code} %{redirect_url}' -H "Cookie: $SESSION_COOKIE" "$authz")
      rt=$(printf '%s' "$loc" | sed -n 's/^302 .*[?&]code=\([^&]*\).*/\1/p')
      if [ -z "$rt" ]; then
        code="authorize: $loc"
      else
        code=$(curl -s -o "$dir/sanity-$s.json" -w '%{http_code}' -X POST "$BASE/oauth2/token" \
          --data-urlencode grant_type=authorization_code --data-urlencode "client_id=$client" \
          --data-urlencode "code=$(printf '%b' "${rt//%/\\x}")" --data-urlencode "redirect_uri=$SPA_REDIRECT_URI" \
          --data-urlencode "code_verifier=$CODE_VERIFIER")
        header=$(sed -n 's/.*"id_token":"\([^."]*\)\..*/\1/p' "$dir/sanity-$s.json" | tr '_-' '/+')
        while [ $(( ${#header} % 4 )) -ne 0 ]; do header="$header="; done
        header=$(printf '%s' "$header" | base64 -d 2>/dev/null || true)
        [ "$code" != 200 ] || [[ "$header" == *"\"alg\":\"$alg\""* ]] || code="ID token header $header, not $alg"
      fi ;;
    password_mfa)
      code=$(curl -s -o "$dir/sanity-$s.json" -w '%{http_code}' -X POST "$BASE/oauth2/token" \
        --data-urlencode grant_type=password --data-urlencode "username=bench-mfa-000000@example.com" \
        --data-urlencode "password=$MFA_PASSWORD" --data-urlencode client_id=web)
      if [ "$code" = 403 ] && grep -q '"error":"mfa_required"' "$dir/sanity-$s.json" &&
        grep -q '"mfa_token":"' "$dir/sanity-$s.json"; then code=200; else code="$code (403 mfa_required expected)"; fi ;;
    mfa)
      # One round trip for the spare user (not one of the pass's): password grant (403), then
      # the MFA grant.
      local line otp
      mint_mfa "$dir/mfa-sanity-user.txt" "$dir/sanity-$s.mint"
      wait_mfa_step
      line=$(sed -n 2p "$dir/sanity-$s.mint")
      otp=$(mfa_code_now "$dir/sanity-$s.mint" "$line")
      code=$(curl -s -o "$dir/sanity-$s.json" -w '%{http_code}' -X POST "$BASE/oauth2/token" \
        --data-urlencode grant_type=urn:latchkey:params:oauth:grant-type:mfa --data-urlencode client_id=web \
        --data-urlencode "mfa_token=${line%% *}" --data-urlencode "otp=$otp")
      grep -q '"access_token":"' "$dir/sanity-$s.json" || code="$code (no access token)" ;;
    sign_in_page)
      code=$(curl -s -o "$dir/sanity-$s.html" -D "$dir/sanity-$s.headers" -w '%{http_code}' -X POST "$BASE/login" \
        -H "Cookie: $CSRF_COOKIE" --data-urlencode "csrf=$CSRF_TOKEN" \
        --data-urlencode "username=$USER_EMAIL" --data-urlencode "password=$USER_PASSWORD")
      if [ "$code" = 303 ] && grep -qi "^set-cookie: $SESSION_COOKIE_NAME=" "$dir/sanity-$s.headers"; then
        code=200
      else
        code="$code (a 303 with the session cookie expected)"
      fi ;;
  esac
  [ "$code" = 200 ] || { cat "$dir/sanity-$s.json" >&2; die "sanity check for $s answered $code"; }
}

# The browser scenarios' client: authorize_code_100k uses the RS256 one.
spa_client() { # scenario
  case "$1" in
    authorize_code_es256) echo bench-spa-es256 ;;
    *) echo bench-spa-rs256 ;;
  esac
}

urlencode() { # string -> its form encoding (every byte but the unreserved ones)
  local s=$1 i c out=""
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case "$c" in [A-Za-z0-9._~-]) out+=$c ;; *) out+=$(printf '%%%02X' "'$c") ;; esac
  done
  printf '%s' "$out"
}

run_pass() { # scenario dir pass -> appends a row to $dir/$scenario.passes
  local s=$1 dir=$2 pass=$3 raw script="" url="$BASE/oauth2/token" username=$USER_EMAIL password=$USER_PASSWORD
  raw="$dir/$s.pass$pass.txt"
  case "$s" in
    password) script="$BENCH/wrk/password.lua" ;;
    password_mfa) script="$BENCH/wrk/password.lua"; username=bench-mfa-000000@example.com; password=$MFA_PASSWORD ;;
    mfa)
      script="$BENCH/wrk/mfa.lua"
      mint_mfa "$dir/mfa-pass-users.txt" "$dir/$s.pass$pass.mfa"
      ;;
    refresh)
      script="$BENCH/wrk/refresh.lua"
      seed_refresh_tokens "$dir/$s.pass$pass.tokens" "$SEED_TOKENS"
      ;;
    refresh_retry)
      script="$BENCH/wrk/refresh_retry.lua"
      seed_refresh_tokens "$dir/$s.pass$pass.tokens" "$SEED_TOKENS" web-grace
      ;;
    client_credentials) script="$BENCH/wrk/client_credentials.lua" ;;
    jwks) url="$BASE/.well-known/jwks.json" ;;
    introspect) script="$BENCH/wrk/introspect.lua"; url="$BASE/oauth2/introspect" ;;
    revoke)
      script="$BENCH/wrk/revoke.lua"; url="$BASE/oauth2/revoke"
      mint_tokens "$dir/$s.pass$pass.tokens"
      ;;
    me)
      script="$BENCH/wrk/me.lua"; url="$BASE/api/v1/me"
      # One token for the scenario, renewed (not timed) if a long quiet wait aged it.
      if [ $((SECONDS - ${ACCESS_TOKEN_AT:-0})) -gt 300 ]; then
        ACCESS_TOKEN=$(login | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p'); ACCESS_TOKEN_AT=$SECONDS
      fi
      ;;
    reset_request) script="$BENCH/wrk/reset_request.lua"; url="$BASE/api/v1/password/reset" ;;
    authorize_code_*) script="$BENCH/wrk/authorize_code.lua"; url="$BASE" ;;
    sign_in_page) script="$BENCH/wrk/sign_in_page.lua"; url="$BASE/login" ;;
  esac
  wait_quiet "$s pass $pass"
  [ "$s" != mfa ] || wait_mfa_step
  local ob0="" au0="" auu0="" failed0="" ar0=""
  [ "$s" != refresh_retry ] || ar0=$(audit_count "$dir" refresh_token_retry)
  if [ "$s" = reset_request ]; then
    ob0=$(outbox_count "$dir"); au0=$(audit_count "$dir" password_reset_requested)
    auu0=$(audit_user_count "$dir"); failed0=$(grep -c 'account background step failed' "$dir/server.log" || true)
  fi
  local srv0 pg0 busy0 t0 srv1 pg1 busy1 t1
  srv0=$(proc_ticks "$SERVER_PID"); pg0=$(postgres_ticks); busy0=$(busy_ticks); t0=$(date +%s.%N)
  # A top snapshot in the middle of the pass (second frame: CPU over one second).
  (sleep 4; top -b -n2 -d1 -w 200 | awk '/^top -/ { n++ } n == 2' | head -25 >"$dir/$s.pass$pass.top") &
  SAMPLER_PIDS+=($!)
  LK_USERNAME="$username" LK_PASSWORD="$password" LK_CLIENT_SECRET="$CLIENT_SECRET" \
    LK_MFA_FILE="$dir/$s.pass$pass.mfa" \
    LK_TOKENS_FILE="$dir/$s.pass$pass.tokens" LK_WRK_THREADS="$THREADS" \
    LK_CLIENT_ID="$(refresh_client "$s")" LK_RETRIES="$REFRESH_RETRIES" \
    LK_ACCESS_TOKEN="${ACCESS_TOKEN:-}" LK_BASIC="$(basic_for "$s")" LK_RESET_USERS="$RESET_USERS" \
    LK_SPA_CLIENT_ID="$(spa_client "$s")" LK_REDIRECT_URI="$SPA_REDIRECT_URI" LK_SESSION_COOKIE="${SESSION_COOKIE:-}" \
    LK_CODE_VERIFIER="$CODE_VERIFIER" LK_CODE_CHALLENGE="${CODE_CHALLENGE:-}" LK_CSRF_COOKIE="${CSRF_COOKIE:-}" \
    LK_CSRF_TOKEN="${CSRF_TOKEN:-}" LK_SESSION_COOKIE_NAME="${SESSION_COOKIE_NAME:-}" \
    run_child wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout "$WRK_TIMEOUT" --latency \
    ${script:+-s "$script"} "$url" >"$raw" 2>&1 || { cat "$raw" >&2; die "wrk failed ($s)"; }
  srv1=$(proc_ticks "$SERVER_PID"); pg1=$(postgres_ticks); busy1=$(busy_ticks); t1=$(date +%s.%N)
  [ "$s" != mfa ] || MFA_LAST_STEP=$(($(date +%s) / 30))
  wait "${SAMPLER_PIDS[@]}" 2>/dev/null || true
  SAMPLER_PIDS=()
  kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during $s (see $dir/server.log)"
  local hwm cpu
  hwm=$(status_kb "$SERVER_PID" VmHWM)
  # CPU over the pass, in cores (2.0 = both cores busy): server, PostgreSQL, everything else
  # (mostly wrk).
  cpu=$(awk -v s="$((srv1 - srv0))" -v p="$((pg1 - pg0))" -v b="$((busy1 - busy0))" \
    -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN {
      d = (t1 - t0) * hz; printf "%.2f %.2f %.2f", s / d, p / d, (b - s - p) / d }')
  echo "$pass $(parse_wrk "$raw") $hwm $cpu $(chain_stats "$s" "$raw")" >>"$dir/$s.passes"
  log "$s pass $pass: $(awk '{ printf "%s req/s, p50 %s ms, p99 %s ms, non-2xx %s, socket errors %s, VmHWM %s kB, cpu server/pg/other %s/%s/%s", $2, $3, $4, $5, $6, $8, $9, $10, $11 }' <<<"$(tail -n1 "$dir/$s.passes")")"
  if grep -q -- '-chain: ' "$raw" && [ "$s" != reset_request ]; then log "$s pass $pass: $(grep -- '-chain: ' "$raw")"; fi
  if [ "$s" = refresh_retry ]; then retry_accounting "$dir" "$pass" "$raw" "$ar0"; fi
  if [ "$s" = reset_request ]; then
    reset_accounting "$dir" "$pass" "$ob0" "$au0" "$(tail -n1 "$dir/$s.passes" | cut -d' ' -f7)" "$auu0" "$failed0"
    # The peak includes the background work that went on after wrk.
    sed -i '$ s/^\(\([^ ]* \)\{7\}\)[^ ]*/\1'"$(status_kb "$SERVER_PID" VmHWM)"'/' "$dir/$s.passes"
  fi
}

# After a refresh_retry pass: the refresh_token_retry audit rows the pass wrote (written just
# after each answer: waits up to 10 s for the count to settle) against the retries wrk saw
# answered with the same successor; appended to $dir/refresh_retry.audit and to the notes.
retry_accounting() { # dir pass raw audit_before
  local dir=$1 pass=$2 raw=$3 a0=${4:-0} a prev="" same line
  line=$(grep -- '^retry-chain: ' "$raw" || true)
  same=$(printf '%s' "$line" | sed -n 's/.*same successor \([0-9]*\),.*/\1/p')
  for _ in $(seq 20); do
    a=$(audit_count "$dir" refresh_token_retry)
    [ "$a" != "$prev" ] || break
    prev=$a; sleep 0.5
  done
  echo "$pass ${same:-?} $(( ${a:-0} - a0 )) $line" >>"$dir/refresh_retry.audit"
  log "refresh_retry pass $pass: ${same:-?} retries answered with the same successor, $(( ${a:-0} - a0 )) refresh_token_retry audit rows"
  echo "$BACKEND refresh_retry pass $pass: $line; refresh_token_retry audit rows +$(( ${a:-0} - a0 ))" >>"$OUT/notes"
}

# The browser scenarios' own counts, columns 12 and 13 of a pass's row: completed round trips
# (authorize_code: token 200s) or sign-ins (sign_in_page: 303s with a session cookie) per
# second, and the requests that failed (any other answer). Nothing for the other scenarios.
chain_stats() { # scenario raw
  case "$1" in
    authorize_code_*) sed -n 's/^authorize-chain: round trips [0-9]*, round trips\/s \([0-9.]*\), codes [0-9]*, authorize without code \([0-9]*\), token errors \([0-9]*\), other answers \([0-9]*\) .*/\1 \2 \3 \4/p' "$2" |
        awk '{ print $1, $2 + $3 + $4 }' ;;
    sign_in_page) sed -n 's/^sign-in-chain: sign-ins [0-9]*, sign-ins\/s \([0-9.]*\), failed \([0-9]*\) .*/\1 \2/p' "$2" ;;
    mfa) sed -n 's/^mfa-chain: sent [0-9]*, 200 [0-9]*, 400 \([0-9]*\), 429 \([0-9]*\), other \([0-9]*\), exhausted \([0-9]*\), outside steps \([0-9]*\), lines left [0-9]*, 200\/s \([0-9.]*\)$/\6 \1 \2 \3 \4 \5/p' "$2" |
        awk '{ print $1, $2 + $3 + $4, $5, $6 }' ;;
  esac
}

# Median pass by requests/s, or by another column (for an even count, the lower middle).
median_row() { # passes [column]
  sort -k"${2:-2}","${2:-2}"g "$1" | awk '{ r[NR] = $0 } END { print r[int((NR + 1) / 2)] }'
}

run_backend() { # backend
  local backend=$1 dir="$OUT/$1" s pass want
  BACKEND=$backend
  mkdir -p "$dir"
  log "[$backend] starting the server"
  start_server "$backend" "$dir"
  create_fixtures "$dir"
  sleep 2
  status_kb "$SERVER_PID" VmRSS >"$dir/idle_rss_kb"
  log "[$backend] idle RSS $(kb_to_mb "$(cat "$dir/idle_rss_kb")") MB"
  # After the idle figure: the server's own argon2 verification (19 MiB) would be in it.
  if browser_scenarios; then
    browser_sign_in "$dir"
    sleep 2
    status_kb "$SERVER_PID" VmRSS >"$dir/idle_rss_signed_in_kb"
    log "[$backend] idle RSS after one sign-in through /login $(kb_to_mb "$(cat "$dir/idle_rss_signed_in_kb")") MB"
  fi
  for s in $SCENARIOS; do
    want=$(scenario_env "$s")
    if [ "$want" != "$SERVER_EXTRA_ENV" ]; then
      log "[$backend] restarting the server for $s${want:+ with $want}"
      stop_server
      launch_server "$dir" "$want"
      [ -z "$want" ] || echo "$backend $s: the server ran with $want" >>"$OUT/notes"
    fi
    case "$s" in
      authorize_code_rs256 | authorize_code_es256) seed_sessions "$dir" "$SESSIONS_BASE" ;;
      authorize_code_100k) seed_sessions "$dir" "$SESSIONS_LARGE" ;;
      mfa) seed_mfa "$dir" users ;;
      password_mfa) seed_mfa "$dir" password ;;
    esac
    sanity_check "$s" "$dir"
    case "$s" in authorize_code_* | sign_in_page) session_count "$dir" >"$dir/$s.sessions" ;; esac
    # Reset the peak-RSS mark so that each scenario's peak is its own (Linux clear_refs 5).
    echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || echo "clear_refs unavailable" >>"$dir/notes"
    status_kb "$SERVER_PID" VmRSS >"$dir/$s.rss_before_kb"
    : >"$dir/$s.passes"
    for pass in $(seq "$PASSES"); do run_pass "$s" "$dir" "$pass"; done
  done
  sleep 2
  status_kb "$SERVER_PID" VmRSS >"$dir/idle_rss_after_kb"
  log "[$backend] idle RSS after the scenarios $(kb_to_mb "$(cat "$dir/idle_rss_after_kb")") MB"
  if [ "${backend%-redis}" = postgres ]; then
    psql "${PG_ADMIN_URL%/*}/$PG_DB" -qtAc \
      "select 'refresh_token_families=' || count(*) from refresh_token_families union all
       select 'revocations=' || count(*) from revocations union all
       select 'audit_events=' || count(*) from audit_events union all
       select 'account_tokens=' || count(*) from account_tokens" >"$dir/db_counts" 2>/dev/null || true
  fi
  echo "outbox_files=$(outbox_count "$dir")" >>"$dir/db_counts"
  if browser_scenarios; then echo "live_sso_sessions=$(session_count "$dir")" >>"$dir/db_counts"; fi
  stop_server
  drop_pg_db
  case "$backend" in *-redis) drop_redis_sessions ;; esac
}

run_argon2() {
  local pass
  : >"$OUT/argon2.passes"
  for pass in $(seq "$PASSES"); do
    wait_quiet "argon2 pass $pass"
    run_child "$ARGON2_BIN" 2 "$CONNECTIONS" "${DURATION%s}" >"$OUT/argon2.pass$pass.txt" ||
      die "argon2_rate failed"
    cat "$OUT/argon2.pass$pass.txt" >&2
    sed -n 's/.*rate=\([0-9.]*\).*/\1/p' "$OUT/argon2.pass$pass.txt" >>"$OUT/argon2.passes"
  done
}

# --- the run -------------------------------------------------------------------------------

if [ -z "${SKIP_BUILD:-}" ]; then
  log "building the release binary and the argon2 example"
  (cd "$ROOT" && cargo build --release --quiet && cargo build --release --quiet --example argon2_rate --example mfa_fixture)
fi
[ -x "$BIN" ] || die "$BIN is missing"

{
  echo "run: $RUN_ID"
  echo "git: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "$(cd "$ROOT" && [ -n "$(git status --porcelain -- src migrations Cargo.toml Cargo.lock 2>/dev/null)" ] && echo '(working tree modified)')"
  echo "binary: $BIN, built $(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ), sha256 $(sha256sum "$BIN" | cut -c1-16)"
  echo "nproc: $(nproc)"
  echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "wrk: -t$THREADS -c$CONNECTIONS -d$DURATION --timeout $WRK_TIMEOUT --latency; passes: $PASSES"
  echo "db max connections: ${DB_MAX_CONNECTIONS:-default}"
  echo "RUST_BACKTRACE in the shell: $RUST_BACKTRACE_WAS; for the server: ${RUST_BACKTRACE:-unset}"
  [ -z "$PG_DB_SETTINGS" ] || echo "PostgreSQL database settings: $PG_DB_SETTINGS"
  [ -z "$LOAD_ENV" ] || echo "load settings: $LOAD_ENV"
  [ -z "$SERVER_ENV" ] || echo "server settings: $SERVER_ENV"
  [[ " $SCENARIOS " != *" reset_request "* ]] || echo "reset_request: ${RESET_USERS} users, $((2 * RESET_USERS)) addresses; server settings: ${RESET_ENV:-none}"
  [[ " $SCENARIOS " != *" mfa "* ]] || echo "mfa: $MFA_USERS users, tokens minted with $MFA_MINT_CONCURRENCY concurrent password grants; server settings for mfa: ${MFA_ENV:-none}; fixture tool $MFA_FIXTURE_BIN, sha256 $(sha256sum "$MFA_FIXTURE_BIN" 2>/dev/null | cut -c1-16)"
  ! browser_scenarios || echo "browser sign-in: sessions before authorize_code $SESSIONS_BASE, before authorize_code_100k $SESSIONS_LARGE; clients bench-spa-rs256, bench-spa-es256 (first-party, public)"
  echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

first=1
for backend in $BACKENDS; do
  run_backend "$backend"
  if [ "$first" = 1 ] && [ "$ARGON2" != 0 ]; then
    log "argon2id ceiling (bench/argon2_rate.rs, 2 threads, $CONNECTIONS tasks)"
    run_argon2
  fi
  first=0
done

# --- summary -------------------------------------------------------------------------------

ARGON2_RATE=""
if [ -s "$OUT/argon2.passes" ]; then
  ARGON2_RATE=$(sort -g "$OUT/argon2.passes" | awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }')
fi

{
  echo "## Run $RUN_ID"
  echo
  sed 's/^/    /' "$OUT/machine.txt"
  echo
  if [ -n "$ARGON2_RATE" ]; then
    echo "argon2id ceiling (m=19456 KiB, t=2, p=1, 2 threads): **$ARGON2_RATE verifications/s**" \
      "(median of $(wc -l <"$OUT/argon2.passes"); all: $(sort -g "$OUT/argon2.passes" | paste -sd' '))"
    echo
  fi
  for backend in $BACKENDS; do
    dir="$OUT/$backend"
    [ -f "$dir/idle_rss_kb" ] || continue
    SIGNED_IN_RSS_TEXT=""
    if [ -f "$dir/idle_rss_signed_in_kb" ]; then
      SIGNED_IN_RSS_TEXT="after one sign-in through /login: $(kb_to_mb "$(cat "$dir/idle_rss_signed_in_kb")") MB; "
    fi
    echo "### $backend"
    echo
    echo "idle RSS after start-up and fixtures: $(kb_to_mb "$(cat "$dir/idle_rss_kb")") MB;" \
      "${SIGNED_IN_RSS_TEXT:-}idle RSS after all scenarios: $(kb_to_mb "$(cat "$dir/idle_rss_after_kb" 2>/dev/null || echo 0)") MB"
    echo
    echo "| scenario | req/s (median) | req/s (all passes) | p50 ms | p99 ms | non-2xx | socket errors | RSS before MB | peak RSS MB | CPU server/pg/other (cores) |"
    echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"
    for s in $SCENARIOS; do
      [ -s "$dir/$s.passes" ] || continue
      row=$(median_row "$dir/$s.passes")
      all=$(awk '{ print $2 }' "$dir/$s.passes" | paste -sd' ')
      non=$(awk '{ n += $5 } END { print n + 0 }' "$dir/$s.passes")
      se=$(awk '{ n += $6 } END { print n + 0 }' "$dir/$s.passes")
      peak=$(awk 'BEGIN { m = 0 } $8 > m { m = $8 } END { printf "%.1f", m / 1024 }' "$dir/$s.passes")
      before=$(kb_to_mb "$(cat "$dir/$s.rss_before_kb")")
      name=$s
      if [ "$s" = password_mfa ]; then name="password_mfa (403 mfa_required)"; fi
      if { [ "$s" = password ] || [ "$s" = password_mfa ]; } && [ -n "$ARGON2_RATE" ]; then
        name="$s$([ "$s" = password ] || echo ", 403 mfa_required") ($(awk -v r="$(echo "$row" | cut -d' ' -f2)" -v c="$ARGON2_RATE" \
          'BEGIN { printf "%.0f", 100 * r / c }')% of argon2)"
      fi
      if [ "$s" = reset_request ] && [ -n "$RESET_ENV" ]; then name="reset_request ($RESET_ENV)"; fi
      # reset_request's 503s (deferred work full) are expected under overload: shown apart.
      if [ "$s" = reset_request ] && [ -s "$dir/reset_request.mail" ]; then
        non=$(awk -v n="$non" '{ b += $11; o += $12 } END { printf "%d (503: %d, other: %d)", n, b, o }' "$dir/reset_request.mail")
      fi
      echo "$row" | awk -v n="$name" -v all="$all" -v non="$non" -v se="$se" -v peak="$peak" -v before="$before" \
        '{ printf "| %s | %s | %s | %.2f | %.2f | %s | %d | %s | %s | %s / %s / %s |\n", n, $2, all, $3, $4, non, se, before, peak, $9, $10, $11 }'
    done
    echo
    if compgen -G "$dir/authorize_code_*.passes" >/dev/null || [ -f "$dir/sign_in_page.passes" ]; then
      echo "Browser sign-in (median pass by completed round trips or sign-ins per second; req/s counts"
      echo "both requests of a round trip; p50/p99 are per request, authorize and token mixed;"
      echo "failures: answers other than a code, a token 200 or a 303 sign-in, over all passes):"
      echo
      echo "| scenario | live sessions | completed/s (median) | completed/s (all passes) | req/s | p50 ms | p99 ms | failures | non-2xx/3xx |"
      echo "|---|---:|---:|---|---:|---:|---:|---:|---:|"
      for s in $SCENARIOS; do
        case "$s" in authorize_code_* | sign_in_page) ;; *) continue ;; esac
        [ -s "$dir/$s.passes" ] || continue
        row=$(median_row "$dir/$s.passes" 12)
        all=$(awk '{ print $12 }' "$dir/$s.passes" | paste -sd' ')
        fail=$(awk '{ n += $13 } END { print n + 0 }' "$dir/$s.passes")
        non=$(awk '{ n += $5 } END { print n + 0 }' "$dir/$s.passes")
        name=$s
        case "$s" in
          authorize_code_rs256) name="authorize_code RS256 (round trips/s)" ;;
          authorize_code_es256) name="authorize_code ES256 (round trips/s)" ;;
          authorize_code_100k) name="authorize_code RS256, $SESSIONS_LARGE sessions (round trips/s)" ;;
          sign_in_page)
            name="sign_in_page (sign-ins/s)"
            if [ -n "$ARGON2_RATE" ]; then
              name="sign_in_page (sign-ins/s; $(awk -v r="$(echo "$row" | cut -d' ' -f12)" -v c="$ARGON2_RATE" \
                'BEGIN { printf "%.0f", 100 * r / c }')% of argon2)"
            fi ;;
        esac
        echo "$row" | awk -v n="$name" -v all="$all" -v fail="$fail" -v non="$non" \
          -v live="$(cat "$dir/$s.sessions" 2>/dev/null || echo '?')" \
          '{ printf "| %s | %s | %s | %s | %s | %.2f | %.2f | %s | %s |\n", n, live, $12, all, $2, $3, $4, fail, non }'
      done
      echo
    fi
    if [ -s "$dir/mfa.passes" ]; then
      echo "MFA grant (median pass by 200s per second; failures: answers other than 200, over all"
      echo "passes; exhausted: requests sent after a wrk thread ran out of mfa_tokens, answered 400;"
      echo "outside steps: requests whose step had no precomputed code):"
      echo
      echo "| scenario | 200/s (median) | 200/s (all passes) | req/s | p50 ms | p99 ms | failures | exhausted | outside steps |"
      echo "|---|---:|---|---:|---:|---:|---:|---:|---:|"
      row=$(median_row "$dir/mfa.passes" 12)
      echo "$row" | awk -v all="$(awk '{ print $12 }' "$dir/mfa.passes" | paste -sd' ')" \
        -v fail="$(awk '{ n += $13 } END { print n + 0 }' "$dir/mfa.passes")" \
        -v ex="$(awk '{ n += $14 } END { print n + 0 }' "$dir/mfa.passes")" \
        -v out="$(awk '{ n += $15 } END { print n + 0 }' "$dir/mfa.passes")" \
        '{ printf "| mfa (TOTP) | %s | %s | %s | %.2f | %.2f | %s | %s | %s |\n", $12, all, $2, $3, $4, fail, ex, out }'
      echo
    fi
    if [ -s "$dir/reset_request.mail" ]; then
      echo "reset_request by pass (req/s counts 202s and 503s alike; 202/s is the accepted rate;"
      echo "\"202s for users\": audit rows of the pass that found an account; background failures: logged during the pass):"
      echo
      echo "| pass | requests | 202 | 503 (Retry-After: 1) | other | 202/s | naming a user (sent) | 202s for users | outbox files | audit rows | background failures | work after wrk s |"
      echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      awk '{
          printf "| %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $10, $11, $14, $12, $16, $3, $13, $4, $5, $15, $6
          r += $2; a += $10; b += $11; ra += $14; o += $12; e += $3; u += $13; ob += $4; au += $5; fl += $15 }
        END { printf "| all | %d | %d | %d (%d) | %d | | %d | %d | %d | %d | %d | |\n", r, a, b, ra, o, e, u, ob, au, fl }' \
        "$dir/reset_request.mail"
      echo
      echo "server log at the end: $(tail -n1 "$dir/reset_request.mail" | awk '{ printf "%s \"mail queue full\", %s \"account background step failed\", %s \"audit event not stored\"", $7, $8, $9 }')"
      grep -h 'reset-chain' "$dir"/reset_request.pass*.txt | sed 's/^/    /'
      echo
    fi
  done
  echo "non-2xx and socket errors are summed over all passes; p50/p99 and CPU are from the median pass;"
  echo "peak RSS is the highest VmHWM over the scenario's passes (reset before each scenario)."
} >"$OUT/summary.md"

if [ -s "$OUT/notes" ]; then
  { echo; echo "Notes:"; sed 's/^/- /' "$OUT/notes"; } >>"$OUT/summary.md"
fi
cat "$OUT/summary.md"
log "raw outputs in $OUT"
