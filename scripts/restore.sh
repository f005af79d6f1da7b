#!/bin/sh
# Restore a backup made by scripts/backup.sh into a database. docs/operations.md, "Backup and restore".
#
#   DATABASE_URL=postgres://user:pass@host:5432/retain_restored scripts/restore.sh FILE
#
# The target database must exist (createdb) and be empty: the restore refuses to mix a backup with
# existing tables. Set RESTORE_REPLACE=1 to drop the backup's tables in the target first (the data there is
# lost). One transaction: an error leaves the target as it was. Then run `python manage.py migrate` if the
# code is newer than the backup (migrations run forward from the backup's state).
set -eu

if [ $# -ne 1 ] || [ ! -f "$1" ]; then
    echo "usage: DATABASE_URL=postgres://... scripts/restore.sh FILE   (FILE: a scripts/backup.sh dump)" >&2
    exit 2
fi
if [ -z "${DATABASE_URL:-}" ]; then
    echo "restore.sh: set DATABASE_URL to the database to restore into" >&2
    exit 2
fi

tables=$(psql "$DATABASE_URL" -Atc "select count(*) from pg_tables where schemaname = 'public'")
clean=""
if [ "$tables" != "0" ]; then
    if [ "${RESTORE_REPLACE:-0}" != "1" ]; then
        echo "restore.sh: the target database already has $tables tables; restore into an empty database," >&2
        echo "or set RESTORE_REPLACE=1 to replace them (their data is lost)" >&2
        exit 3
    fi
    clean="--clean --if-exists"
fi
# shellcheck disable=SC2086  # $clean is two options or none
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction $clean --dbname="$DATABASE_URL" "$1"
echo "restore.sh: restored $1"
