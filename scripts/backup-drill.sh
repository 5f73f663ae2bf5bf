#!/usr/bin/env bash
# Backup and restore drill for the controller's PostgreSQL database: dump it the way the backup does
# (pg_dump -Fc), restore the dump into a fresh database, and show what the restored copy holds (table
# counts next to the source's, the checkpoint count and the newest checkpoints). The restored database
# is dropped at the end unless --keep is given. Needs pg_dump, pg_restore and psql (PostgreSQL client
# tools as new as the server). See docs/deployment.md, "Backup and restore".
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/backup-drill.sh [options] DATABASE

DATABASE is the e2epool database to dump: a name (the server comes from PGHOST, PGPORT, PGUSER and
PGPASSWORD, or ~/.pgpass) or a postgresql:// URL. The restored copy is created on the same server.

Options:
  --target NAME      name of the fresh database to restore into (default: DATABASE_drill_<UTC time>)
  --keep             keep the restored database for inspection (default: drop it at the end)
  --dump-file PATH   write the dump here and keep it (default: a temporary file, deleted)
  --from-dump PATH   restore this existing dump (for example last night's backup) instead of dumping
                     DATABASE; DATABASE then only names the server to restore on
  --limit N          how many of the newest checkpoints to show (default 5)
  -h, --help         this text
USAGE
}

die() {
  echo "backup-drill: $*" >&2
  exit 1
}

source_conn=""
target=""
keep=0
dump_file=""
from_dump=""
limit=5
while [ $# -gt 0 ]; do
  case "$1" in
    --target) [ $# -ge 2 ] || die "--target needs a name"; target="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --dump-file) [ $# -ge 2 ] || die "--dump-file needs a path"; dump_file="$2"; shift 2 ;;
    --from-dump) [ $# -ge 2 ] || die "--from-dump needs a path"; from_dump="$2"; shift 2 ;;
    --limit) [ $# -ge 2 ] || die "--limit needs a number"; limit="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) [ -z "$source_conn" ] || die "only one DATABASE, got '$source_conn' and '$1'"; source_conn="$1"; shift ;;
  esac
done
[ -n "$source_conn" ] || { usage >&2; exit 2; }
[[ "$limit" =~ ^[0-9]+$ ]] || die "--limit must be a number"
[ -z "$from_dump" ] || [ -f "$from_dump" ] || die "dump file $from_dump does not exist"
[ -z "$from_dump" ] || [ -z "$dump_file" ] || die "--dump-file and --from-dump exclude each other"
for tool in pg_dump pg_restore psql; do
  command -v "$tool" >/dev/null || die "$tool is not installed (PostgreSQL client tools)"
done

# A URL keeps its server, user and options; only the database part is replaced. A plain name is
# resolved by libpq from the PG* variables.
case "$source_conn" in
  postgres://* | postgresql://*)
    base="${source_conn%%\?*}"
    query="${source_conn#"$base"}"
    source_name="${base##*/}"
    conn_for() { printf '%s/%s%s' "${base%/*}" "$1" "$query"; }
    ;;
  *)
    source_name="$source_conn"
    conn_for() { printf '%s' "$1"; }
    ;;
esac
[ -n "$source_name" ] || die "the URL names no database"

if [ -z "$target" ]; then
  target="${source_name}_drill_$(date -u +%Y%m%d%H%M%S)"
  target="${target:0:63}"
fi
[[ "$target" =~ ^[a-z_][a-z0-9_]*$ ]] || die "target '$target' must be lowercase letters, digits and _ (start with a letter or _)"
[ "$target" != "$source_name" ] || die "the target must not be the source database"
target_conn="$(conn_for "$target")"

q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
scalar() { q -A -t -d "$1" -c "$2"; }

workdir="$(mktemp -d "${TMPDIR:-/tmp}/e2epool-drill.XXXXXX")"
created_target=0
cleanup() {
  local status=$?
  if [ "$created_target" = 1 ] && [ "$keep" = 0 ]; then
    if q -d "$source_conn" -c "drop database if exists \"$target\" with (force)" 2>/dev/null; then
      echo "dropped $target (--keep keeps it)"
    else
      echo "backup-drill: could not drop $target; drop it by hand" >&2
    fi
  fi
  rm -rf "$workdir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

server="$(scalar "$source_conn" "select coalesce(host(inet_server_addr()), 'local socket') || ':' || current_setting('port')")" ||
  die "cannot connect to $source_name"
echo "== e2epool backup drill on $server"

# Milliseconds since the epoch; bash 5 has EPOCHREALTIME, older shells get whole seconds.
now_ms() {
  local t="${EPOCHREALTIME:-}"
  if [ -n "$t" ]; then t="${t//[.,]/}"; echo "${t:0:${#t}-3}"; else echo "$(($(date +%s) * 1000))"; fi
}
if [ -n "$from_dump" ]; then
  dump="$from_dump"
  echo "dump:     $dump (given; $source_name is not dumped)"
else
  dump="${dump_file:-$workdir/$source_name.dump}"
  started="$(now_ms)"
  pg_dump --format=custom --no-owner --no-privileges --file="$dump" --dbname="$source_conn" || die "pg_dump of $source_name failed"
  echo "dump:     $source_name -> $dump ($(du -k "$dump" | cut -f1) KiB, $(($(now_ms) - started)) ms)"
fi

started="$(now_ms)"
q -d "$source_conn" -c "create database \"$target\"" || die "could not create database $target (does it exist already?)"
created_target=1
pg_restore --exit-on-error --no-owner --no-privileges --dbname="$target_conn" "$dump" || die "pg_restore into $target failed"
echo "restored: $target ($(($(now_ms) - started)) ms)"

migrations="$(scalar "$target_conn" "select count(*) from __e2epool_migrations" 2>/dev/null)" ||
  die "$target has no e2epool schema (no __e2epool_migrations table): is this an e2epool dump?"
echo "schema:   $migrations migrations applied"

echo
tables="runners checkpoints checkpoint_transitions webhook_inbox alerts audit_log controller_settings"
if [ -z "$from_dump" ]; then
  printf '%-24s %10s %10s\n' table source restored
  for table in $tables; do
    printf '%-24s %10s %10s\n' "$table" \
      "$(scalar "$source_conn" "select count(*) from $table" 2>/dev/null || echo '-')" \
      "$(scalar "$target_conn" "select count(*) from $table" 2>/dev/null || echo '-')"
  done
  echo "(source counts are read after the dump: a running controller may have added rows since)"
else
  printf '%-24s %10s\n' table restored
  for table in $tables; do
    printf '%-24s %10s\n' "$table" "$(scalar "$target_conn" "select count(*) from $table" 2>/dev/null || echo '-')"
  done
fi

echo
echo "checkpoints in the restored database: $(scalar "$target_conn" "select count(*) from checkpoints")"
echo "newest $limit:"
q -d "$target_conn" -P footer=off -c "select name, runner_id, state, created_at from checkpoints order by created_at desc, id desc limit $limit"
echo "drill ok"
