#!/usr/bin/env bash
# The HTTP contract check: Schemathesis generates requests from openapi.yaml and sends them
# to a live Latchkey; the run fails on any server error, status code the spec does not list
# for the operation, undeclared Content-Type, response breaking its schema or documented
# headers, and on a 405 without `Allow` (see CHECKS below). scripts/test.sh runs it after
# the test suite; it also runs alone (`scripts/contract.sh`). Arguments are handed to
# `schemathesis run`, e.g. `scripts/contract.sh --include-path-regex '^/(oauth2/authorize|login)'`
# to check a few paths only.
#
# What it sets up:
#   - Schemathesis (pinned below) in its own virtual environment under target/contract/venv,
#     kept for the next run (python3 -m venv; python3 and python3-venv are installed with
#     apt-get if that fails);
#   - the debug `latchkey` binary (cargo build), or LK_CONTRACT_BIN;
#   - thrown away at exit: a server on a free loopback port with a fresh SQLite data dir, its
#     own config file, the admin API enabled, and the seeded credentials the spec's security
#     schemes take (scripts/contract_hooks.py hands them to each operation), with two clients
#     for browser sign-in.
# Knobs: LK_CONTRACT_MAX_EXAMPLES (test cases per operation and phase, default 100: about
# 8,400 test cases, 3 minutes on 2 cores),
# LK_CONTRACT_SEED (a fixed seed to reproduce a run), LK_CONTRACT_WORKERS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${LK_CONTRACT_MAX_EXAMPLES:-100}
WORKERS=${LK_CONTRACT_WORKERS:-2}

log() { printf '==> contract: %s\n' "$*" >&2; }
started=$(date +%s)

# --- Schemathesis in its own virtual environment ---------------------------------------
VENV=$PWD/target/contract/venv
need_apt() {
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
if [ ! -x "$VENV/bin/schemathesis" ] ||
  [ "$("$VENV/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$SCHEMATHESIS_VERSION" ]; then
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  if ! command -v python3 >/dev/null || ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    log "installing python3-venv"
    rm -rf "$VENV"
    need_apt python3 python3-venv
    python3 -m venv "$VENV"
  fi
  log "installing schemathesis $SCHEMATHESIS_VERSION"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
PY="$VENV/bin/python"

# --- the server ----------------------------------------------------------------------------
if [ -n "${LK_CONTRACT_BIN:-}" ]; then
  BIN=$LK_CONTRACT_BIN
else
  log "cargo build --bin latchkey"
  cargo build --locked --quiet --bin latchkey
  BIN=target/debug/latchkey
fi

WORK=$(mktemp -d /tmp/latchkey-contract.XXXXXX)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

rand() { "$PY" -c 'import secrets; print(secrets.token_urlsafe(32))'; }
ADMIN_TOKEN=$(rand)
USER_PASSWORD=$(rand) # random, not a password of the spec's examples: no example can delete the user
export LATCHKEY_CONFIG="$WORK/latchkey.toml"
export LATCHKEY_MASTER_KEY
LATCHKEY_MASTER_KEY=$("$PY" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
# Cheap argon2 (the fuzzer signs in often). The throttle stays on, with limits far above
# what one run sends, so the fuzzer sees the endpoints' answers instead of 429/Retry-After
# after a few requests (the 429 answers are in the spec and in tests/api/throttle.rs).
cat >"$LATCHKEY_CONFIG" <<EOF
[server]
bind = "127.0.0.1:0"
workers = 2

[database]
url = "sqlite://$WORK/latchkey.db"

[admin]
token = "$ADMIN_TOKEN"

[log]
level = "warn"

[mail]
outbox_dir = "$WORK/outbox"

[passwords]
hashing_threads = 2

[passwords.argon2]
memory_kib = 64
iterations = 1

[throttle]
login_free_failures = 1000
account_max_failures = 1000000
ip_max_failures = 1000000
email_cooldown_secs = 0
email_daily_cap = 100000
ip_daily_cap = 1000000
signup_per_ip_per_hour = 100000
admin_max_failures = 10000
user_requests_per_minute = 100000000
client_requests_per_minute = 100000000
revocations_per_client_per_minute = 100000000
introspections_per_client_per_minute = 100000000
EOF

log "seeding credentials with the CLI"
"$BIN" migrate >/dev/null
for email in contract-user@example.com contract-browser@example.com contract-browser-2@example.com; do
  printf '%s\n' "$USER_PASSWORD" |
    "$BIN" users create --email "$email" --password-stdin --verified >/dev/null
done
"$BIN" clients create --name contract-web --client-id contract-web --public \
  --grant password --grant refresh_token --scope openid >/dev/null
RS_SECRET=$("$BIN" clients create --name contract-rs --client-id contract-rs --confidential \
  --grant client_credentials --scope latchkey.introspect --json |
  "$PY" -c 'import json, sys; print(json.load(sys.stdin)["client_secret"])')
# Browser sign-in (the same ids and URIs as BROWSER_CLIENTS in scripts/contract_hooks.py): a
# first-party public client (PKCE, no consent page) and a confidential one that asks for
# consent. Their redirect URIs are never followed (Schemathesis does not follow redirects).
"$BIN" clients create --name contract-spa --client-id contract-spa --public --first-party \
  --grant authorization_code --grant refresh_token --scope openid \
  --redirect-uri http://127.0.0.1:9/callback --post-logout-redirect-uri http://127.0.0.1:9/ >/dev/null
"$BIN" clients create --name contract-portal --client-id contract-portal --confidential \
  --grant authorization_code --scope openid \
  --redirect-uri https://portal.contract.test/callback \
  --post-logout-redirect-uri https://portal.contract.test/ >/dev/null

"$BIN" serve 2>"$WORK/server.log" &
SERVER_PID=$!
PORT=""
for _ in $(seq 100); do
  PORT=$(sed -nE 's#^latchkey: listening on http://127\.0\.0\.1:([0-9]+).*#\1#p' "$WORK/server.log")
  [ -n "$PORT" ] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$WORK/server.log" >&2; log "the server did not start"; exit 1; fi
  sleep 0.1
done
[ -n "$PORT" ] || { cat "$WORK/server.log" >&2; log "the server did not report its port"; exit 1; }
URL="http://127.0.0.1:$PORT"
log "Latchkey at $URL"

# --- credentials: scripts/contract_hooks.py picks them per operation from its `security` ---
#   adminBearer        /admin/v1/*: the admin token
#   clientSecretBasic  introspection, the feed (and the Basic alternative of the token and
#                      revocation endpoints): the resource server contract-rs
#   bearerAccessToken  /api/v1/*, userinfo: an access token of the seeded user, minted by the
#                      password grant for every case (the fuzzer's own logouts revoke it)
#   browserSession     the account pages (and, every other case, the authorization, consent
#                      and end-session endpoints): an SSO session of a browser user, signed
#                      in through POST /login; the forms also get a CSRF cookie and its token
export LK_CONTRACT_URL=$URL LK_CONTRACT_ADMIN_TOKEN=$ADMIN_TOKEN LK_CONTRACT_RS_SECRET=$RS_SECRET \
  LK_CONTRACT_USER_PASSWORD=$USER_PASSWORD
export PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=contract_hooks

# Every check of Schemathesis runs but one, which judges the API's input validation
# against the schemas rather than the responses against the contract:
#   positive_data_acceptance  a schema-valid request must succeed. Schemas cannot say that a
#       client_id, token, code, email or password must exist or match (a generated one is
#       schema-valid and rightly refused with the documented 400/401/403/404).
# scripts/contract.toml adjusts one check for the account pages, which refuse a request
# without a session with a 303 to the sign-in page (see there).
# The stateful checks (use_after_free, ensure_resource_availability) run but find nothing
# to do: the spec has no links. ignored_auth sends each secured operation without its
# credentials and expects the refusal.
CHECKS=${LK_CONTRACT_CHECKS:-all}
EXCLUDE=${LK_CONTRACT_EXCLUDE_CHECKS-positive_data_acceptance}
SEED_ARGS=()
if [ -n "${LK_CONTRACT_SEED:-}" ]; then SEED_ARGS=(--seed "$LK_CONTRACT_SEED"); fi

log "schemathesis run (checks: $CHECKS but ${EXCLUDE:-none}; max examples $MAX_EXAMPLES)"
ROOT=$PWD
set +e
# Run from target/contract: Schemathesis keeps its caches and the examples database there
# (.schemathesis/, .hypothesis/; a failing example is tried first on the next run).
(cd target/contract && "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/contract.toml" \
  run "$ROOT/openapi.yaml" \
  --url "$URL" \
  --checks "$CHECKS" ${EXCLUDE:+--exclude-checks "$EXCLUDE"} \
  --max-examples "$MAX_EXAMPLES" \
  --workers "$WORKERS" \
  --request-timeout 10 \
  --no-color \
  --report junit --report-dir report \
  "${SEED_ARGS[@]}" "$@")
status=$?
set -e

if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  log "the server died during the run"; tail -50 "$WORK/server.log" >&2; status=1
fi
log "done in $(($(date +%s) - started)) s (schemathesis exit code $status)"
exit "$status"
