#!/usr/bin/env bash
# Fills `refresh_token_families` with COUNT families of one user and client, directly in SQL.
#
# Usage: bench/seed/refresh_families.sh DATABASE_URL COUNT [STATE] [USER_ID] [CLIENT_ID]
#   DATABASE_URL  the server's database (sqlite://path or postgres://...), already migrated
#   COUNT         families to add
#   STATE         expired (default: past their absolute expiry a minute ago, what
#                 housekeeping deletes) or live (a day left)
#   USER_ID, CLIENT_ID
#                 whose families they are; by default the first user and client in the
#                 database (create them with the CLI first)
# The families are not usable refresh tokens (their token hashes match no secret); they are
# rows the stores must carry: housekeeping, indexes, the table's size.
# SQLite: one INSERT ... SELECT over a recursive CTE; PostgreSQL: over generate_series.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

url=${1:?usage: refresh_families.sh DATABASE_URL COUNT [expired|live] [USER_ID] [CLIENT_ID]}
count=${2:?COUNT}
state=${3:-expired}
case "$count" in '' | *[!0-9]*) die "COUNT must be a number" ;; esac
user=${4:-$(seed_scalar "$url" "SELECT id FROM users ORDER BY created_at LIMIT 1")}
client=${5:-$(seed_scalar "$url" "SELECT id FROM clients ORDER BY created_at LIMIT 1")}
[ -n "$user" ] || die "no user in the database: create one first (latchkey users create)"
[ -n "$client" ] || die "no client in the database: create one first (latchkey clients create)"
case "$user$client" in *"'"*) die "ids with quotes are not supported" ;; esac
now=$(date +%s)
case "$state" in
  expired) created=$((now - 86400)) absolute=$((now - 60)) ;;
  live) created=$((now - 60)) absolute=$((now + 86400)) ;;
  *) die "unknown STATE $state" ;;
esac
prefix="seed-$SEED_TAG-"
columns="id, client_id, user_id, scope, audience, generation, token_hash, expires_at, issued_at,
  created_at, absolute_expires_at, offline_access"
values="'$prefix' || i, '$client', '$user', 'openid', '', 1, '$prefix' || i || '-hash',
  $((created + 3600)), $created, $created, $absolute"

case "$(seed_db_kind "$url")" in
  sqlite)
    seed_sql "$url" <<SQL
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $count)
INSERT INTO refresh_token_families ($columns) SELECT $values, 0 FROM n;
COMMIT;
SQL
    ;;
  postgres)
    seed_sql "$url" <<SQL
INSERT INTO refresh_token_families ($columns)
SELECT $values, false FROM generate_series(1, $count) AS i;
ANALYZE refresh_token_families;
SQL
    ;;
esac
echo "seeded $count $state refresh-token families (user $user, client $client)"
