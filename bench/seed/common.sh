# Shared by the bench/seed scripts (sourced, not run): the database URL's kind and a way to
# run SQL on it. SQLite URLs are sqlite://<path> (as LATCHKEY_DATABASE_URL), PostgreSQL URLs
# postgres://...; the sqlite3 and psql clients must be installed.

die() { echo "seed: $*" >&2; exit 1; }

seed_db_kind() { # url -> sqlite | postgres
  case "$1" in
    sqlite:*) echo sqlite ;;
    postgres://* | postgresql://*) echo postgres ;;
    *) die "unsupported database URL: $1" ;;
  esac
}

seed_sql() { # url: runs the SQL on stdin, stops at the first error
  local url=$1 path
  case "$(seed_db_kind "$url")" in
    sqlite)
      path=${url#sqlite://}
      path=${path#sqlite:}
      path=${path%%\?*}
      [ -f "$path" ] || die "no SQLite database at $path (start latchkey once to create it)"
      sqlite3 -bail "$path"
      ;;
    postgres) psql -X -q -v ON_ERROR_STOP=1 "$url" ;;
  esac
}

seed_scalar() { # url sql: prints the single value the query answers
  local url=$1 sql=$2 path
  case "$(seed_db_kind "$url")" in
    sqlite)
      path=${url#sqlite://}
      path=${path#sqlite:}
      path=${path%%\?*}
      sqlite3 "$path" "$sql"
      ;;
    postgres) psql -X -qtA "$url" -c "$sql" ;;
  esac
}

# A tag of this run, so that seeding twice into one database never repeats an id.
SEED_TAG=$(head -c6 /dev/urandom | od -An -tx1 | tr -d ' \n')
