"""``manage.py create_write_key <org-slug> [--name NAME]`` (spec §8 "Event ingestion").

Issues an ingestion-only write key (HTTP Basic user name of ``/v1/batch`` and friends) and prints it
alone on the last line of stdout, so scripts can capture it with ``tail -n1``. Only its SHA-256 digest
is stored: the key cannot be shown again.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organization, WriteKey


class Command(BaseCommand):
    help = "Issue an ingestion-only write key for an organization; the key is printed alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org_slug")
        parser.add_argument("--name", default="Write key", help="Label shown in the key list")

    def handle(self, *args: Any, org_slug: str, name: str, **options: Any) -> None:
        org = Organization.objects.filter(slug=org_slug).first()
        if org is None:
            raise CommandError(f"no organization with slug {org_slug!r}")
        key, raw = WriteKey.issue(organization=org, name=name)
        self.stdout.write(
            f"Write key {key.key_prefix}… ({key.name}) for {org.slug}: ingestion only; store it now, it is shown once."
        )
        self.stdout.write(raw)
