#!/usr/bin/env bash
# Fills a Latchkey store to N users, fast, straight in SQL (issue 16, "Cost at scale"): for
# measuring what grows with the user table (listing, search, sign-in) at 1k, 100k, 1M users.
#
# Usage: bench/seed/users.sh DATABASE_URL N
#   DATABASE_URL  sqlite://path/to/latchkey.db or postgres://...; the schema must exist
#                 (`latchkey migrate`, or a server that started once on it)
#   N             the number of users wanted; users already there count (nothing is deleted)
# Environment (optional):
#   BATCH=100000             users per transaction
#   SEED_PASSWORD_HASH=      stored as every seeded user's password hash (an argon2id PHC
#                            string from the same server, e.g. copied from a user the CLI
#                            created), so that they can sign in; empty: no password
#   SEED_EPOCH=1700000000    created_at of the first seeded user; four users per second after it
#
# What it writes, in the store's own format (migrations 0001, 0006, 0013):
# - roles member, staff and admin (created when missing, no permissions);
# - users seed-<i>@example.com (i counts on from the users already there): every user has
#   member, 1 in 100 staff, 1 in 10000 admin; 1 in 50 inactive, 1 in 10 unverified; four
#   users share each created_at second (the id orders them), so ties are exercised;
# - user_roles rows with their user's created_at (user_created_at), as the server writes them.
# PostgreSQL: INSERT ... SELECT over generate_series, then ANALYZE (autovacuum would, later).
# SQLite: a recursive CTE per batch, each batch one transaction; no ANALYZE (the server never
# runs it, so plans are measured as a server has them).
set -euo pipefail

url=${1:?usage: bench/seed/users.sh DATABASE_URL N}
want=${2:?usage: bench/seed/users.sh DATABASE_URL N}
BATCH=${BATCH:-100000}
SEED_EPOCH=${SEED_EPOCH:-1700000000}
SEED_PASSWORD_HASH=${SEED_PASSWORD_HASH:-}

log() { printf '==> %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[[ "$want" =~ ^[0-9]+$ ]] || die "N must be a number, not $want"
[[ "$BATCH" =~ ^[1-9][0-9]*$ ]] || die "BATCH must be a positive number"
[[ "$SEED_EPOCH" =~ ^[0-9]+$ ]] || die "SEED_EPOCH must be a number"
case "$SEED_PASSWORD_HASH" in *"'"*) die "SEED_PASSWORD_HASH must not contain a quote" ;; esac

case "$url" in
  sqlite:*)
    db=${url#sqlite://}; db=${db#sqlite:}; db=${db%%\?*}
    [ -f "$db" ] || die "no SQLite database at $db"
    command -v sqlite3 >/dev/null || die "sqlite3 is required"
    sql() { sqlite3 -bail -cmd '.timeout 30000' "$db" "$@"; }
    hash_sql=${SEED_PASSWORD_HASH:+"'$SEED_PASSWORD_HASH'"}
    role_insert="INSERT INTO roles (id, name, description, created_at)
      SELECT lower(printf('%s-%s-4%s-8%s-%s', hex(randomblob(4)), hex(randomblob(2)),
        substr(hex(randomblob(2)), 2), substr(hex(randomblob(2)), 2), hex(randomblob(6)))),
        n, 'seeded by bench/seed/users.sh', $SEED_EPOCH
      FROM (SELECT 'member' AS n UNION ALL SELECT 'staff' UNION ALL SELECT 'admin')
      WHERE true ON CONFLICT (name) DO NOTHING;"
    ;;
  postgres:* | postgresql:*)
    command -v psql >/dev/null || die "psql is required"
    sql() { psql "$url" -v ON_ERROR_STOP=1 -qtAX "$@"; }
    hash_sql=${SEED_PASSWORD_HASH:+"'$SEED_PASSWORD_HASH'"}
    role_insert="INSERT INTO roles (id, name, description, created_at)
      SELECT gen_random_uuid()::text, n, 'seeded by bench/seed/users.sh', $SEED_EPOCH
      FROM unnest(ARRAY['member', 'staff', 'admin']) n
      ON CONFLICT (name) DO NOTHING;"
    ;;
  *) die "unsupported database URL: $url" ;;
esac
hash_sql=${hash_sql:-NULL}

if [ "${url%%:*}" = sqlite ]; then
  run() { sql "$1"; }
else
  run() { sql -c "$1"; }
fi
count() { run "SELECT count(*) FROM users"; }
cols=$(run "SELECT count(*) FROM user_roles WHERE user_created_at < 0" 2>/dev/null) ||
  die "no users table with user_roles.user_created_at at $url (run latchkey migrate, 0013 or later)"
[ "$cols" = 0 ] || die "unexpected user_roles rows"

run "$role_insert"
have=$(count)
if [ "$have" -ge "$want" ]; then
  log "$have users already, nothing to add"
  exit 0
fi
log "$have users; adding $((want - have)) in batches of $BATCH"
t0=$(date +%s.%N)
from=$((have + 1))
while [ "$from" -le "$want" ]; do
  to=$((from + BATCH - 1)); [ "$to" -le "$want" ] || to=$want
  if [ "${url%%:*}" = sqlite ]; then
    run "BEGIN IMMEDIATE;
      CREATE TEMP TABLE IF NOT EXISTS seed_batch (id TEXT, created_at INTEGER, i INTEGER);
      DELETE FROM seed_batch;
      WITH RECURSIVE s(i) AS (SELECT $from UNION ALL SELECT i + 1 FROM s WHERE i < $to)
      INSERT INTO seed_batch (id, created_at, i)
      SELECT lower(printf('%s-%s-4%s-8%s-%s', hex(randomblob(4)), hex(randomblob(2)),
        substr(hex(randomblob(2)), 2), substr(hex(randomblob(2)), 2), hex(randomblob(6)))),
        $SEED_EPOCH + i / 4, i FROM s;
      INSERT INTO users (id, email, is_active, email_verified, password_hash, attributes,
        created_at, updated_at)
      SELECT id, printf('seed-%09d@example.com', i), i % 50 <> 0, i % 10 <> 0, $hash_sql, '{}',
        created_at, created_at FROM seed_batch;
      INSERT INTO user_roles (user_id, role_id, user_created_at)
      SELECT b.id, r.id, b.created_at FROM seed_batch b JOIN roles r
        ON r.name = 'member' OR (r.name = 'staff' AND b.i % 100 = 0)
        OR (r.name = 'admin' AND b.i % 10000 = 0);
      COMMIT;"
  else
    run "BEGIN;
      CREATE TEMP TABLE IF NOT EXISTS seed_batch (id TEXT, created_at BIGINT, i BIGINT);
      TRUNCATE seed_batch;
      INSERT INTO seed_batch (id, created_at, i)
      SELECT gen_random_uuid()::text, $SEED_EPOCH + i / 4, i FROM generate_series($from, $to) i;
      INSERT INTO users (id, email, is_active, email_verified, password_hash, attributes,
        created_at, updated_at)
      SELECT id, 'seed-' || lpad(i::text, 9, '0') || '@example.com', i % 50 <> 0, i % 10 <> 0,
        $hash_sql, '{}', created_at, created_at FROM seed_batch;
      INSERT INTO user_roles (user_id, role_id, user_created_at)
      SELECT b.id, r.id, b.created_at FROM seed_batch b JOIN roles r
        ON r.name = 'member' OR (r.name = 'staff' AND b.i % 100 = 0)
        OR (r.name = 'admin' AND b.i % 10000 = 0);
      COMMIT;"
  fi
  log "users $from..$to"
  from=$((to + 1))
done
if [ "${url%%:*}" != sqlite ]; then run "ANALYZE users; ANALYZE user_roles; ANALYZE roles;"; fi
log "$(count) users; seeding took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
