#!/usr/bin/env bash
# Runs the whole test suite: formatting, clippy, unit tests and the behavioural suite on
# SQLite and PostgreSQL, then the HTTP contract check against openapi.yaml
# (scripts/contract.sh: Schemathesis against a live server). Provisions what the tests need:
#   - cargo-nextest (installed with cargo if missing);
#   - PostgreSQL: LK_TEST_POSTGRES_URL if set; else the server on 127.0.0.1:5432 if it
#     accepts user postgres; else a private throw-away instance (installed with apt-get if
#     the binaries are missing) on 127.0.0.1:55432, stopped when the script exits
#     (LK_TEST_PRIVATE_PG=1 forces this).
#   - Redis (the Redis-denylist half of the suite): LK_TEST_REDIS_URL if set; else the server
#     on 127.0.0.1:6379 if it answers PING; else a private one on 127.0.0.1:56379, stopped when
#     the script exits (LK_TEST_PRIVATE_REDIS=1 forces this). redis-server is installed with
#     apt-get if missing: the outage test starts and stops its own instance too.
#   - The browser tests (tests/api/browser.rs): Debian's Chromium at /usr/bin/chromium
#     (installed with apt-get if missing), node >= 20, the node packages of tests/e2e
#     (`npm ci` from its package-lock.json: playwright-core, openid-client, oidc-client-ts),
#     and the example resource server (examples/resource-server, its own crate, built into
#     target/). Without them those tests fail; they never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

need_apt() {
  if command -v apt-get >/dev/null; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
  else
    log "cannot install $* (no apt-get)"; exit 1
  fi
}

# --- cargo-nextest -----------------------------------------------------------------------
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

# --- PostgreSQL --------------------------------------------------------------------------
PRIVATE_PG=""
PRIVATE_REDIS_PID=""
cleanup() {
  if [ -n "$PRIVATE_REDIS_PID" ]; then
    log "stopping the private Redis"
    kill "$PRIVATE_REDIS_PID" 2>/dev/null || true
  fi
  if [ -n "$PRIVATE_PG" ]; then
    log "stopping the private PostgreSQL"
    run_pg "$PG_BIN/pg_ctl" -D "$PRIVATE_PG/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PRIVATE_PG"
  fi
}
trap cleanup EXIT

run_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_accepts() { # url
  command -v psql >/dev/null && psql "$1" -qtAc 'select 1' >/dev/null 2>&1
}

if [ -z "${LK_TEST_POSTGRES_URL:-}" ]; then
  DEFAULT_URL="postgres://postgres@127.0.0.1:5432/postgres"
  if [ -z "${LK_TEST_PRIVATE_PG:-}" ] && pg_accepts "$DEFAULT_URL"; then
    export LK_TEST_POSTGRES_URL="$DEFAULT_URL"
    log "using PostgreSQL at 127.0.0.1:5432"
  else
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
      log "installing PostgreSQL"
      need_apt postgresql postgresql-client
    fi
    PG_BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
    PRIVATE_PG=$(mktemp -d /tmp/latchkey-pg.XXXXXX)
    chmod 755 "$PRIVATE_PG"
    if [ "$(id -u)" = 0 ]; then chown postgres "$PRIVATE_PG"; fi
    log "starting a private PostgreSQL on 127.0.0.1:55432"
    run_pg "$PG_BIN/initdb" -D "$PRIVATE_PG/data" -A trust -U postgres >/dev/null
    run_pg "$PG_BIN/pg_ctl" -D "$PRIVATE_PG/data" -w -l "$PRIVATE_PG/log" \
      -o "-p 55432 -k $PRIVATE_PG -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
    export LK_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:55432/postgres"
  fi
fi
if ! pg_accepts "$LK_TEST_POSTGRES_URL"; then
  log "PostgreSQL is not reachable at $LK_TEST_POSTGRES_URL"; exit 1
fi
# Databases left by earlier runs (one per test) are dropped first.
psql "$LK_TEST_POSTGRES_URL" -qtAc "select datname from pg_database where datname like 'lk_test_%'" |
  while read -r db; do [ -n "$db" ] && psql "$LK_TEST_POSTGRES_URL" -qc "drop database if exists \"$db\"" >/dev/null; done

# --- Redis ------------------------------------------------------------------------------
redis_ping() { # host port
  # A bare RESP PING over bash's /dev/tcp: no client needed.
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2 && printf 'PING\r\n' >&3 && head -c5 <&3" 2>/dev/null | grep -q PONG
}
if ! command -v redis-server >/dev/null; then
  log "installing Redis"
  need_apt redis-server
fi
if [ -z "${LK_TEST_REDIS_URL:-}" ]; then
  if [ -z "${LK_TEST_PRIVATE_REDIS:-}" ] && redis_ping 127.0.0.1 6379; then
    export LK_TEST_REDIS_URL="redis://127.0.0.1:6379"
    log "using Redis at 127.0.0.1:6379"
  else
    log "starting a private Redis on 127.0.0.1:56379"
    redis-server --port 56379 --bind 127.0.0.1 --save "" --appendonly no \
      --maxmemory-policy noeviction >/dev/null 2>&1 &
    PRIVATE_REDIS_PID=$!
    for _ in $(seq 50); do redis_ping 127.0.0.1 56379 && break; sleep 0.1; done
    export LK_TEST_REDIS_URL="redis://127.0.0.1:56379"
  fi
fi
if ! redis_ping "$(echo "$LK_TEST_REDIS_URL" | sed -E 's#redis://([^:/]+).*#\1#')" \
  "$(echo "$LK_TEST_REDIS_URL" | sed -E 's#redis://[^:/]+:([0-9]+).*#\1#')"; then
  log "Redis is not reachable at $LK_TEST_REDIS_URL"; exit 1
fi

# Keys left by earlier runs (each test uses its own lk_test_<uuid>: prefix) are deleted first.
if command -v redis-cli >/dev/null; then
  redis-cli -u "$LK_TEST_REDIS_URL" --scan --pattern 'lk_test_*' 2>/dev/null |
    xargs -r -n 500 redis-cli -u "$LK_TEST_REDIS_URL" del >/dev/null 2>&1 || true
fi

# --- the browser tests --------------------------------------------------------------------
if [ ! -x /usr/bin/chromium ]; then
  log "installing Chromium"
  need_apt chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing node and npm"
  need_apt nodejs npm
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  log "node $(node --version) is too old for tests/e2e (openid-client v6 needs 20 or later)"; exit 1
fi
log "npm ci (tests/e2e)"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
log "building the example resource server (examples/resource-server)"
cargo build --locked --manifest-path examples/resource-server/Cargo.toml --target-dir target

# --- the suite ---------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
# The contract check runs before the suite, so that the suite's summary closes the output;
# its failure still fails the run.
log "contract check (scripts/contract.sh)"
contract_status=0
scripts/contract.sh || contract_status=$?
log "cargo nextest run"
cargo nextest run --locked --no-fail-fast "$@"
if [ "$contract_status" != 0 ]; then
  log "the contract check failed (exit $contract_status): see its output above"
  exit "$contract_status"
fi
