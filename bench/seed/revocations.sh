#!/usr/bin/env bash
# Fills the revocation log (table `revocations`) with COUNT entries, directly in SQL.
#
# Usage: bench/seed/revocations.sh DATABASE_URL COUNT [KIND] [STATE]
#   DATABASE_URL  the server's database (sqlite://path or postgres://...), already migrated
#   COUNT         entries to add
#   KIND          access_token (default: one revoked jti each), user ("sign out everywhere":
#                 one user watermark each, distinct user ids), session (a refresh family each)
#   STATE         live (default: expiring in an hour, what the denylists hold) or expired
#                 (expired a minute ago, what housekeeping deletes)
# SQLite: one INSERT ... SELECT over a recursive CTE (about 2-3 s per million rows);
# PostgreSQL: one INSERT ... SELECT over generate_series.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"

url=${1:?usage: revocations.sh DATABASE_URL COUNT [access_token|user|session] [live|expired]}
count=${2:?COUNT}
kind=${3:-access_token}
state=${4:-live}
case "$count" in '' | *[!0-9]*) die "COUNT must be a number" ;; esac
case "$kind" in access_token | user | session) ;; *) die "unknown KIND $kind" ;; esac
now=$(date +%s)
case "$state" in
  live) expires=$((now + 3600)) ;;
  expired) expires=$((now - 60)) ;;
  *) die "unknown STATE $state" ;;
esac
# Watermarks (user) revoke what was issued up to the revocation; the others carry none.
if [ "$kind" = user ]; then not_after=$((now - 120)); else not_after=NULL; fi
prefix="seed-$SEED_TAG-"

case "$(seed_db_kind "$url")" in
  sqlite)
    seed_sql "$url" <<SQL
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $count)
INSERT INTO revocations (kind, subject, not_after, revoked_at, expires_at)
SELECT '$kind', '$prefix' || i, $not_after, $((now - 120)), $expires FROM n;
COMMIT;
SQL
    ;;
  postgres)
    seed_sql "$url" <<SQL
INSERT INTO revocations (kind, subject, not_after, revoked_at, expires_at)
SELECT '$kind', '$prefix' || i, $not_after, $((now - 120)), $expires
FROM generate_series(1, $count) AS i;
ANALYZE revocations;
SQL
    ;;
esac
echo "seeded $count $state $kind entries into the revocation log"
