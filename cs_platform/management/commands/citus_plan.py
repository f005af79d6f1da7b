"""``manage.py citus_plan``: which tables a Citus cluster would distribute on organization_id, which are
reference or coordinator-local, the SQL that places them, and what the schema must change first."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from cs_platform.citus import sharding_plan


class Command(BaseCommand):
    help = "Print the Citus sharding plan (distributed / reference / local tables, blockers, placement SQL)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--sql", action="store_true", help="Print only the placement SQL.")

    def handle(self, *args: Any, sql: bool = False, **options: Any) -> None:
        plan = sharding_plan()
        if sql:
            self.stdout.write(plan.sql())
            return
        for title, tables in (
            ("Distributed on organization_id", plan.distributed),
            ("Reference (copied to every node)", plan.reference),
            ("Local to the coordinator", plan.local),
            ("Not placed (decide before migrating)", plan.unplaced),
        ):
            self.stdout.write(f"{title}: {len(tables)}")
            for table in tables:
                self.stdout.write(f"  {table}")
        self.stdout.write(f"Blockers: {len(plan.blockers)}")
        for blocker in plan.blockers:
            self.stdout.write(f"  {blocker}")
