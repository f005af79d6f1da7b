"""``manage.py qbr_report --org <slug> --account <external id or id> [--review <id>] --output file.pdf``:
the value report of a business review as a PDF (the same file as the page's "Download PDF").

Without ``--review`` it takes the account's latest review (by period end); an account without any review
gets a live report over the last full fiscal quarter, exactly as a review started today would show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from accounts.models import Account, Organization
from cs_platform.tenancy import org_scope
from value.models import BusinessReview
from value.pdf import report_pdf
from value.report import build_report, review_report
from value.reviews import default_period


class Command(BaseCommand):
    help = "Write the QBR/EBR value report of an account as a PDF."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="Organization slug")
        parser.add_argument("--account", required=True, help="The account's external id, or its id")
        parser.add_argument("--review", type=int, help="The business review's id (default: the latest)")
        parser.add_argument("--output", required=True, help="Where to write the PDF")

    def handle(self, *args: Any, org: str, account: str, review: int | None, output: str, **options: Any) -> None:
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"no organization with slug {org!r}")
        with org_scope(organization.pk):
            match = Q(external_id=account)
            if account.isdigit():
                match |= Q(pk=int(account))
            # An external id wins over an id that happens to be the same digits.
            found = sorted(
                Account.objects.filter(match).select_related("owner"), key=lambda a: a.external_id != account
            )
            if not found:
                raise CommandError(f"no account {account!r} in {organization.slug}")
            target = found[0]
            reviews = BusinessReview.objects.filter(account=target).select_related("account__owner")
            if review is not None:
                chosen = reviews.filter(pk=review).first()
                if chosen is None:
                    raise CommandError(f"no review {review} of account {account!r}")
            else:
                chosen = reviews.order_by("-period_end", "-pk").first()
            if chosen is not None:
                report = review_report(organization, chosen)
            else:
                start, end = default_period(organization)
                report = build_report(organization, target, period_start=start, period_end=end)
            data = report_pdf(report, organization_name=organization.name)
        Path(output).write_bytes(data)
        which = f"review {chosen.pk} ({chosen.get_status_display().lower()})" if chosen else "a live report"
        self.stdout.write(
            f"Wrote {output}: {target.name}, {which}, {report['period']['start']} to "
            f"{report['period']['end']}, {len(data):,} bytes."
        )
