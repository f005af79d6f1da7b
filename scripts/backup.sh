#!/bin/sh
# Back up Retain's database: one pg_dump file in PostgreSQL's custom format (compressed; restored with
# scripts/restore.sh or pg_restore, whole or table by table). docs/operations.md, "Backup and restore".
#
#   DATABASE_URL=postgres://user:pass@host:5432/retain scripts/backup.sh [FILE]
#
# FILE defaults to retain-<UTC timestamp>.dump in the current directory. The dump is consistent (one
# snapshot) while the app keeps running, and carries no ownership or grants, so it restores under any role.
# It is written to FILE.partial and renamed only once complete: a FILE that exists is a whole backup.
set -eu

if [ -z "${DATABASE_URL:-}" ]; then
    echo "backup.sh: set DATABASE_URL (postgres://user:password@host:port/database)" >&2
    exit 2
fi
case "$DATABASE_URL" in
    postgres://*|postgresql://*) ;;
    *) echo "backup.sh: DATABASE_URL is not PostgreSQL; the demo's SQLite file is backed up by copying it" >&2; exit 2 ;;
esac

out="${1:-retain-$(date -u +%Y%m%dT%H%M%SZ).dump}"
pg_dump --format=custom --no-owner --no-privileges --file="$out.partial" --dbname="$DATABASE_URL"
mv "$out.partial" "$out"
echo "backup.sh: wrote $out ($(wc -c < "$out") bytes)"
