# Shared by the bench/scale scripts (sourced): a private server per binary on a fresh
# database, the CLI fixtures, and the measurement lock.

die() { echo "scale: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PORT=${PORT:-18377}
BASE="http://127.0.0.1:$PORT"
PG_ADMIN_URL=${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
EMAIL=scale@example.com
PASSWORD="correct horse battery staple 7"
LOAD_ENV=${LOAD_ENV-"LATCHKEY_THROTTLE_USER_REQUESTS_PER_MINUTE=100000000 LATCHKEY_THROTTLE_CLIENT_REQUESTS_PER_MINUTE=100000000"}
LOCK=/tmp/LK_BENCH_MEASURING
export EMAIL PASSWORD

take_lock() { # description
  while [ -e "$LOCK" ]; do echo "waiting for the lock: $(cat "$LOCK" 2>/dev/null)" >&2; sleep 10; done
  echo "$1 (pid $$, since $(date -u +%H:%M:%S) UTC)" >"$LOCK"
  trap 'rm -f "$LOCK"; stop_server' EXIT
}

fresh_database() { # backend dir -> sets DB_URL
  local backend=$1 dir=$2
  case "$backend" in
    sqlite) DB_URL="sqlite://$dir/latchkey.db" ;;
    postgres)
      PG_DB="lk_scale_$(basename "$dir" | tr -c 'a-z0-9\n' '_')_$$"
      psql -X "$PG_ADMIN_URL" -qtAc "drop database if exists \"$PG_DB\"" >/dev/null
      psql -X "$PG_ADMIN_URL" -qtAc "create database \"$PG_DB\"" >/dev/null || die "cannot create $PG_DB"
      DB_URL="${PG_ADMIN_URL%/*}/$PG_DB"
      ;;
    *) die "unknown backend $backend" ;;
  esac
  export LATCHKEY_DATABASE_URL=$DB_URL
  LATCHKEY_MASTER_KEY=$(head -c32 /dev/urandom | base64)
  export LATCHKEY_MASTER_KEY LATCHKEY_BIND="127.0.0.1:$PORT" LATCHKEY_LOG_LEVEL=${LOG_LEVEL:-warn}
  local kv
  for kv in $LOAD_ENV; do export "${kv?}"; done
}

SERVER_PID=
start_server() { # bin dir [extra env...]: waits for /healthz; sets SERVER_PID, STARTED_NS
  local bin=$1 dir=$2; shift 2
  curl -s -o /dev/null "$BASE/healthz" && die "something already listens on port $PORT"
  STARTED_NS=$(date +%s%N)
  (cd "$dir" && exec env "$@" "$bin" serve) >>"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 600); do
    curl -fs -o /dev/null "$BASE/healthz" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$dir/server.log" >&2; die "the server exited"; }
    sleep 0.05
  done
  die "the server did not become healthy in 30 s"
}

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
  fi
}

create_fixtures() { # bin dir: a user and the public client web (password, refresh_token)
  local bin=$1 dir=$2
  (cd "$dir" &&
    printf '%s\n' "$PASSWORD" | "$bin" users create --email "$EMAIL" --password-stdin --json &&
    "$bin" clients create --name web --client-id web --public \
      --grant password --grant refresh_token --scope openid --json) \
    >"$dir/fixtures.json" 2>"$dir/fixtures.err" || { cat "$dir/fixtures.err" >&2; die "fixtures failed"; }
}

login_tokens() { # n file: n password grants, one refresh token per line
  local n=$1 file=$2 i
  : >"$file"
  for i in $(seq "$n"); do
    curl -fs "$BASE/oauth2/token" -d grant_type=password --data-urlencode "username=$EMAIL" \
      --data-urlencode "password=$PASSWORD" -d client_id=web |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["refresh_token"])' >>"$file"
  done
  [ "$(wc -l <"$file")" = "$n" ] || die "logins failed"
}

sql_scalar() { # sql
  case "$DB_URL" in
    sqlite://*) sqlite3 "${DB_URL#sqlite://}" "$1" ;;
    *) psql -X -qtA "$DB_URL" -c "$1" ;;
  esac
}

machine_notes() {
  echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GB RAM, load $(cut -d' ' -f1-3 /proc/loadavg)"
}
