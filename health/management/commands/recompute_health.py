"""``manage.py recompute_health <org-slug> [--as-of YYYY-MM-DD]`` (spec §8): the bulk path the scheduler
runs, synchronously, recorded as a JobRun like the scheduled runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organization
from cs_platform.jobs import create_job, run_job
from cs_platform.tenancy import org_scope
from health.services import recompute_health


class Command(BaseCommand):
    help = "Recompute the health score of every account of an organization (the scheduler's bulk path)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("org", help="Organization slug")
        parser.add_argument(
            "--as-of",
            help="Score as of this day (YYYY-MM-DD; default today). Past days "
            "write that day's snapshots only, never the latest scores.",
        )

    def handle(self, *args: Any, org: str, as_of: str | None = None, **options: Any) -> None:
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization with slug {org!r}")
        day = None
        if as_of:
            try:
                day = dt.date.fromisoformat(as_of)
            except ValueError as exc:
                raise CommandError(f"--as-of: {as_of!r} is not a YYYY-MM-DD date") from exc
        job = create_job(
            organization_id=organization.pk, kind="recompute_health", params={"trigger": "command", "as_of": as_of}
        )
        with org_scope(organization.pk), run_job(job.pk, organization_id=organization.pk) as recorder:
            result = recompute_health(organization, as_of=day, job=recorder)
        colors = ", ".join(f"{n} {c}" for c, n in sorted(result.by_color.items()))
        self.stdout.write(
            f"Recomputed health of {result.accounts} accounts of {organization.slug} as of {result.as_of} "
            f"in {result.seconds:.2f} s: {result.scored} scored, {result.unscored} without a score "
            f"({result.churned} churned), {result.color_changes} colour changes"
            + (f"; colours: {colors}" if colors else "")
            + f". Job run {job.pk}."
        )
