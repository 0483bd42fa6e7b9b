#!/bin/sh
# One-shot (temporalio/admin-tools, and the cluster test tier with a
# source-built temporal-sql-tool on PATH): creates Temporal's two PostgreSQL
# databases and brings their schemas to the version of the schema files in
# $TEMPORAL_SCHEMA_DIR (the admin-tools image keeps them in /etc/temporal/schema).
# Safe to re-run: existing databases are kept and applied schema versions are skipped.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
schema_dir="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema}/postgresql/v12"

sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" -u "$POSTGRES_USER" "$@"; }

setup() { # <database> <schema folder>
  sql --db "$1" create
  sql --db "$1" setup-schema -v 0.0
  sql --db "$1" update-schema -d "$schema_dir/$2/versioned"
}
setup temporal temporal
setup temporal_visibility visibility
echo "setup-schema: databases temporal and temporal_visibility are up to date"
