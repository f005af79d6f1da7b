"""``manage.py import_csv <org-slug> <kind> <file> [--dry-run]`` (spec §8).

All or nothing per file: with any bad row nothing is imported, every error is listed on stderr as
``line N, column C: reason`` and the command exits non-zero. ``-`` reads the file from stdin.
The kinds are declared in the apps' ``import_kinds.py`` modules (registry: :mod:`cs_platform.imports`),
where their columns and rules are described.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organization
from cs_platform.imports import UnsupportedKind, import_csv, registry
from cs_platform.tenancy import org_scope


class Command(BaseCommand):
    help = "Import a CSV file of one spec §8 kind into an organization, all or nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org_slug")
        parser.add_argument("kind", help=f"One of: {', '.join(registry.names())}")
        parser.add_argument("file", help="Path of the CSV file, or - for stdin")
        parser.add_argument("--dry-run", action="store_true", help="Validate and count, write nothing")

    def handle(self, *args: Any, org_slug: str, kind: str, file: str, dry_run: bool, **options: Any) -> None:
        org = Organization.objects.filter(slug=org_slug).first()
        if org is None:
            raise CommandError(f"no organization with slug {org_slug!r}")
        if file != "-" and not Path(file).is_file():
            raise CommandError(f"no such file: {file}")
        source = sys.stdin.buffer if file == "-" else file
        try:
            with org_scope(org):
                result = import_csv(org, kind, source, dry_run=dry_run)
        except UnsupportedKind as exc:
            raise CommandError(str(exc)) from exc
        if not result.ok:
            for error in result.errors:
                self.stderr.write(str(error))
            if result.error_count > len(result.errors):
                self.stderr.write(f"… and {result.error_count - len(result.errors)} more")
            raise CommandError(f"{file}: {result.summary()}")
        prefix = "Dry run: " if dry_run else ""
        self.stdout.write(f"{prefix}{result.summary()}")
