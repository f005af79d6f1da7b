"""``migrate``, run in the row-level-security system context and as the login user.

Django's own command, wrapped: data migrations read and write every organization's rows, and schema
changes need the tables' owner, so the application role (``DATABASE_APP_ROLE``) is left for the run.
The policies themselves are (re)applied afterwards by the ``post_migrate`` receiver (cs_platform/rls.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

from cs_platform.rls import system_context


class Command(DjangoMigrate):
    def handle(self, *args: Any, **options: Any) -> Any:
        connection = connections[options.get("database") or "default"]
        role = getattr(settings, "DATABASE_APP_ROLE", "")
        switched = bool(role) and connection.vendor == "postgresql"
        if switched:
            with connection.cursor() as cursor:
                cursor.execute("RESET ROLE")
        try:
            with system_context("migrate: schema and data migrations of every organization"):
                return super().handle(*args, **options)
        finally:
            if switched and connection.connection is not None:
                with connection.cursor() as cursor:
                    cursor.execute(f'SET ROLE "{role}"')
