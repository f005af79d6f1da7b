"""``manage.py create_org <slug> --name NAME [--admin-email E --admin-password P]`` (spec §8).

Idempotent: a second run with the same slug changes nothing, except that the admin named by
``--admin-email`` is (re)made an admin of the organization and, when ``--admin-password`` is given,
gets that password. The organization's name is never changed by a re-run.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email, validate_slug

from accounts.choices import Role
from accounts.services import create_organization, ensure_membership


class Command(BaseCommand):
    help = "Create an organization (tenant) and optionally its first admin. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="URL name of the organization, e.g. acme")
        parser.add_argument("--name", required=True, help="Display name, e.g. 'Acme Corp'")
        parser.add_argument("--admin-email", help="Email of the organization's admin (user created if unknown)")
        parser.add_argument("--admin-password", help="Password to set for the admin")

    def handle(self, *args: Any, slug: str, name: str, admin_email: str | None, admin_password: str | None, **options):
        try:
            validate_slug(slug)
        except ValidationError as exc:
            raise CommandError(f"invalid slug {slug!r}: use letters, numbers, hyphens and underscores") from exc
        if not name.strip():
            raise CommandError("--name must not be empty")
        if admin_password and not admin_email:
            raise CommandError("--admin-password needs --admin-email")
        if admin_email:
            try:
                validate_email(admin_email)
            except ValidationError as exc:
                raise CommandError(f"invalid email {admin_email!r}") from exc

        org, created = create_organization(slug=slug, name=name.strip())
        if created:
            self.stdout.write(f"Created organization {org.slug} ({org.name}).")
        else:
            note = "" if org.name == name.strip() else f" (its name stays {org.name!r})"
            self.stdout.write(f"Organization {org.slug} already exists; unchanged{note}.")
        if admin_email:
            membership = ensure_membership(
                organization=org, email=admin_email, role=Role.ADMIN, password=admin_password or None
            )
            self.stdout.write(f"{membership.user.email} is an admin of {org.slug}.")
            if not membership.user.has_usable_password():
                self.stderr.write("The admin has no password yet: pass --admin-password to let them sign in.")
