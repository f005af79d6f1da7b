"""The throwaway Postgres database each benchmark measures in: ``<DATABASE_URL's name>_<suffix>_bench`` on
the server of ``DATABASE_URL``, so a benchmark never touches the database the app or the tests use."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BenchDatabase:
    name: str
    url: str
    server: dict[str, Any]

    def admin(self, sql: str, params: Any = None) -> list[Any]:
        """Run one statement on the server's ``postgres`` database (autocommit: CREATE/DROP DATABASE)."""
        import psycopg2

        connection = psycopg2.connect(**self.server)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    @property
    def server_version(self) -> int:
        return int(self.admin("SHOW server_version_num")[0][0])

    def exists(self) -> bool:
        return bool(self.admin("SELECT 1 FROM pg_database WHERE datname = %s", [self.name]))

    def create(self, *, fresh: bool = False) -> None:
        """Create the database; ``fresh`` drops an existing one first, else an existing one is kept."""
        if fresh:
            self.drop()
        if not self.exists():
            self.admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        """Drop the database, after closing this process's Django connections to it (if Django is set up)."""
        from django.conf import settings

        if settings.configured:
            from django.db import connections

            connections.close_all()
        self.admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def use(self) -> None:
        """Point this process's ``DATABASE_URL`` at the benchmark database (before Django is set up)."""
        os.environ["DATABASE_URL"] = self.url


def bench_database(suffix: str, module: str) -> BenchDatabase:
    """The benchmark database of ``DATABASE_URL``'s server; exits with a usage message unless it is Postgres."""
    import dj_database_url

    url = os.environ.get("DATABASE_URL", "")
    config = dj_database_url.parse(url) if url else {"ENGINE": ""}
    if config["ENGINE"] != "django.db.backends.postgresql":
        print(
            f"python -m {module} measures the production setup: set DATABASE_URL to a Postgres server, e.g.\n"
            f"  DATABASE_URL=postgres://postgres@127.0.0.1:5432/retain python -m {module}",
            file=sys.stderr,
        )
        sys.exit(2)
    name = f"{config['NAME']}_{suffix}_bench"
    server = {
        key: value
        for key, value in {
            "host": config.get("HOST"),
            "port": config.get("PORT"),
            "user": config.get("USER"),
            "password": config.get("PASSWORD"),
            "dbname": "postgres",
        }.items()
        if value
    }
    return BenchDatabase(name=name, url=f"{url.rsplit('/', 1)[0]}/{name}", server=server)
