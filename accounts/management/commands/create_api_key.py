"""``manage.py create_api_key <org-slug> --role ROLE [--name NAME] [--user EMAIL]`` (spec §8).

Prints the new key alone on the last line of stdout, so scripts can capture it with ``tail -n1``.
Only the key's SHA-256 digest is stored: the key cannot be shown again.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.choices import Role
from accounts.models import ApiKey, Membership, Organization

# A key bound to a user may not carry more rights than the user has in the organization.
ROLE_RANK = {Role.VIEWER: 0, Role.CSM: 1, Role.LEADER: 2, Role.ADMIN: 3}


class Command(BaseCommand):
    help = "Issue an API key for an organization; the key is printed alone on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org_slug")
        parser.add_argument("--role", required=True, help=f"One of: {', '.join(Role.values)}")
        parser.add_argument("--name", default="API key", help="Label shown in the key list")
        parser.add_argument("--user", dest="user_email", help="Bind the key to this member (needed to write as a csm)")

    def handle(self, *args: Any, org_slug: str, role: str, name: str, user_email: str | None, **options: Any) -> None:
        org = Organization.objects.filter(slug=org_slug).first()
        if org is None:
            raise CommandError(f"no organization with slug {org_slug!r}")
        if role not in Role.values:
            raise CommandError(f"unknown role {role!r}; expected one of: {', '.join(Role.values)}")
        extra: dict[str, Any] = {}
        if user_email:
            membership = (
                Membership.objects.for_org(org).select_related("user").filter(user__email__iexact=user_email).first()
            )
            if membership is None:
                raise CommandError(f"{user_email} is not a member of {org.slug}")
            if ROLE_RANK[role] > ROLE_RANK[membership.role]:
                raise CommandError(
                    f"{user_email} is a {membership.role} in {org.slug}; a key bound to them cannot be {role}"
                )
            extra["user"] = membership.user
        elif role == Role.CSM:
            self.stderr.write("Note: a csm key without --user can read but write nothing (a csm writes their book).")
        key, raw = ApiKey.issue(organization=org, role=role, name=name, **extra)
        bound = f", bound to {extra['user'].email}" if extra else ""
        self.stdout.write(f"API key {key.key_prefix}… ({role}{bound}) for {org.slug}; store it now, it is shown once.")
        self.stdout.write(raw)
