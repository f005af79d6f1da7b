"""scripts/backup.sh and scripts/restore.sh on the local PostgreSQL (docs/operations.md, "Backup and restore").

A scratch database gets Retain's real schema (``migrate``) and a few rows, is backed up with the script,
restored with the other into a new database, and the two are compared table by table. The databases are
created and dropped by the test; the test database of the run is not touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = os.environ.get("DATABASE_URL", "")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not SERVER_URL.startswith(("postgres://", "postgresql://")), reason="needs Postgres"),
    pytest.mark.skipif(not (shutil.which("pg_dump") and shutil.which("pg_restore")), reason="needs pg_dump/pg_restore"),
]

SEED = """
from accounts.services import create_organization
from cs_platform.organizations import ApiKey, Organization
from tests.factories import AccountFactory, ContactFactory

org, _ = create_organization(slug="backup-co", name="Backup Co")
other, _ = create_organization(slug="other-co", name="Other Co")
for organization, accounts in ((org, 3), (other, 2)):
    for account in AccountFactory.create_batch(accounts, organization=organization):
        ContactFactory(organization=organization, account=account)
ApiKey.issue(organization=org, role="admin", name="ci")
print("seeded", Organization.objects.count())
"""


def database_url(name: str) -> str:
    parts = urlsplit(SERVER_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def psql(url: str, sql: str) -> str:
    return subprocess.run(["psql", url, "-Atc", sql], check=True, capture_output=True, text=True).stdout.strip()


def manage(url: str, *args: str, code: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "cs_platform.settings"}
    env.pop("REDIS_URL", None)  # the scratch database's set-up queues nothing
    command = [sys.executable, "-c", f"import django; django.setup()\n{code}"] if code else [
        sys.executable, "manage.py", *args
    ]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def row_counts(url: str) -> dict[str, int]:
    tables = psql(url, "select tablename from pg_tables where schemaname = 'public' order by 1").split()
    union = " union all ".join(f"select '{t}', count(*) from \"{t}\"" for t in tables)
    return {name: int(n) for name, n in (line.split("|") for line in psql(url, union).splitlines())}


@pytest.fixture
def scratch(tmp_path):
    """Two new databases on the server of DATABASE_URL (the source and the restore target), dropped after."""
    names = [f"retain_backup_{uuid.uuid4().hex[:8]}", f"retain_restore_{uuid.uuid4().hex[:8]}"]
    admin = database_url("postgres")
    for name in names:
        psql(admin, f'create database "{name}"')
    yield [database_url(name) for name in names]
    for name in names:
        psql(admin, f'drop database if exists "{name}" with (force)')


def test_a_backup_restores_into_a_new_database_with_every_row(scratch, tmp_path):
    source, target = scratch
    manage(source, "migrate", "--noinput")
    seeded = manage(source, code=SEED)
    assert "seeded 2" in seeded.stdout
    dump = tmp_path / "retain.dump"

    backup = subprocess.run(
        ["sh", "scripts/backup.sh", str(dump)], cwd=ROOT, env={**os.environ, "DATABASE_URL": source},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert backup.returncode == 0, backup.stderr
    assert dump.stat().st_size > 0 and not Path(f"{dump}.partial").exists()

    restore = subprocess.run(
        ["sh", "scripts/restore.sh", str(dump)], cwd=ROOT, env={**os.environ, "DATABASE_URL": target},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert restore.returncode == 0, restore.stderr

    before, after = row_counts(source), row_counts(target)
    assert after == before
    # The rows the seed wrote, and the key's digest (never the raw key) came back.
    assert (after["accounts_organization"], after["accounts_account"], after["accounts_contact"]) == (2, 5, 5)
    assert after["accounts_apikey"] == 1 and after["django_migrations"] == before["django_migrations"] > 0
    assert psql(target, "select slug from accounts_organization order by slug") == "backup-co\nother-co"
    # The restored database is one the app runs on: nothing left to migrate.
    plan = manage(target, "migrate", "--check")
    assert plan.returncode == 0

    # Restoring again into the now non-empty database is refused unless replacing is asked for.
    again = subprocess.run(
        ["sh", "scripts/restore.sh", str(dump)], cwd=ROOT, env={**os.environ, "DATABASE_URL": target},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 3 and "already has" in again.stderr
    replaced = subprocess.run(
        ["sh", "scripts/restore.sh", str(dump)], cwd=ROOT,
        env={**os.environ, "DATABASE_URL": target, "RESTORE_REPLACE": "1"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert replaced.returncode == 0, replaced.stderr
    assert row_counts(target) == before


def test_backup_refuses_without_a_postgres_url(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(["sh", "scripts/backup.sh", str(tmp_path / "x.dump")], cwd=ROOT, env=env,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 2 and "set DATABASE_URL" in result.stderr
    sqlite = {**env, "DATABASE_URL": "sqlite:///var/retain.sqlite3"}
    result = subprocess.run(["sh", "scripts/backup.sh", str(tmp_path / "x.dump")], cwd=ROOT, env=sqlite,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 2 and "not PostgreSQL" in result.stderr
