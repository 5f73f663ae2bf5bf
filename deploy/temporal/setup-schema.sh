#!/bin/sh
# One-shot job of the compose file's `temporal-admin-tools` service (image temporalio/admin-tools):
# creates the Temporal databases on the PostgreSQL service if they are missing and brings both
# schemas to the version shipped in the image. The Temporal server starts only once this exited 0.
#
# Safe on every start: `create` and `setup-schema -v 0.0` leave an existing database as it is, and
# `update-schema` applies only the versions the database does not have yet. Upgrade the server one
# minor version at a time (1.30 -> 1.31 -> 1.32): each image carries the schema steps up to its own
# version.
#
# The password comes from SQL_PASSWORD (read by temporal-sql-tool), never from the command line.
set -eu

: "${POSTGRES_SEEDS:?POSTGRES_SEEDS (the PostgreSQL host) is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
DB_PORT="${DB_PORT:-5432}"
SCHEMA_DIR="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}"

sql_tool() {
  temporal-sql-tool --plugin postgres12 --endpoint "$POSTGRES_SEEDS" --port "$DB_PORT" --user "$POSTGRES_USER" "$@"
}

# database name, then the schema directory it follows
for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
  database="${pair%%:*}"
  versioned="$SCHEMA_DIR/${pair#*:}/versioned"
  if [ ! -d "$versioned" ]; then
    echo "setup-schema: $versioned is missing from this image" >&2
    exit 1
  fi
  echo "setup-schema: database $database from $versioned"
  sql_tool --database "$database" create
  sql_tool --database "$database" setup-schema -v 0.0
  sql_tool --database "$database" update-schema -d "$versioned"
done
echo "setup-schema: done"
