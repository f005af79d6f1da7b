"""Create (or refresh) the restricted application role that row-level security binds.

    manage.py rls_role [--role retain_app] [--grant-to LOGIN_USER]

The role is NOLOGIN, NOSUPERUSER, NOBYPASSRLS and owns nothing, so the policies of every tenant table
bind it (and FORCE ROW LEVEL SECURITY binds even an owner). It gets the data privileges on the current
schema's tables and sequences, now and for tables created later by the user running this command
(ALTER DEFAULT PRIVILEGES). ``--grant-to`` lets a login user ``SET ROLE`` to it (DATABASE_APP_ROLE).
Run it as the tables' owner (or a superuser), after ``migrate``; it is idempotent.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def ensure_role(role: str, grant_to: str | None = None) -> None:
    if not _NAME.fullmatch(role) or (grant_to and not _NAME.fullmatch(grant_to)):
        raise CommandError("role names must be plain lower-case Postgres identifiers")
    if connection.vendor != "postgresql":
        raise CommandError("row-level security needs Postgres")
    with connection.cursor() as cursor:
        # Roles are cluster-wide: tolerate another database's run creating it at the same moment.
        cursor.execute(
            f"""DO $$ BEGIN
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE "{role}" NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
                  END IF;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END $$"""
        )
        cursor.execute(f'ALTER ROLE "{role}" NOSUPERUSER NOBYPASSRLS')
        cursor.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        cursor.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
        cursor.execute(f'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
        cursor.execute(
            f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"'
        )
        cursor.execute(
            f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO "{role}"'
        )
        if grant_to:
            cursor.execute(f'GRANT "{role}" TO "{grant_to}"')


class Command(BaseCommand):
    help = "Create or refresh the restricted database role row-level security binds (DATABASE_APP_ROLE)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--role", default=getattr(settings, "DATABASE_APP_ROLE", "") or "retain_app")
        parser.add_argument("--grant-to", default=None, help="login user allowed to SET ROLE to it")

    def handle(self, *args: Any, role: str, grant_to: str | None, **options: Any) -> None:
        ensure_role(role, grant_to)
        self.stdout.write(f"role {role}: NOSUPERUSER NOBYPASSRLS, data privileges granted")
