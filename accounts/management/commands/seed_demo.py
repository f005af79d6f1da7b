"""``manage.py seed_demo [--org SLUG] [--accounts N] [--seed S]`` (spec §8).

Deterministic demo data (same seed, same day → same rows); re-running replaces the organization's
demo data. See :mod:`accounts.demo` for what is made and what arrives with later issues.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.demo import DEMO_PASSWORD, DemoRefused, seed_demo
from cs_platform.rls import system_context


class Command(BaseCommand):
    help = "Create or replace a demo organization with realistic, deterministic data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", default="demo", help="Organization slug (default: demo)")
        parser.add_argument("--accounts", type=int, default=300, help="Number of accounts (default: 300)")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default: 42)")
        parser.add_argument(
            "--force", action="store_true", help="Also delete accounts of the org that seed_demo did not make"
        )

    def handle(self, *args: Any, org: str, accounts: int, seed: int, force: bool, **options: Any) -> None:
        if accounts < 1:
            raise CommandError("--accounts must be at least 1")
        verbose = options.get("verbosity", 1) > 1
        try:
            # The demo creates an organization and all of its rows (and may delete an old one): a system run.
            with system_context("seed_demo: creates (or replaces) the demo organization"):
                summary = seed_demo(
                    slug=org, accounts=accounts, seed=seed, force=force, log=self.stdout.write if verbose else None
                )
        except DemoRefused as exc:
            raise CommandError(str(exc)) from exc
        made = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary.counts.items())
        self.stdout.write(f"Seeded {summary.organization.name} ({org}) in {summary.seconds:.1f} s: {made}.")
        self.stdout.write("Surveys (beyond NPS responses) arrive with a later issue.")
        self.stdout.write(f"Demo login: {summary.admin_email} / {DEMO_PASSWORD}")
