"""Demo (``seed_demo``, registered by HealthConfig at order 50, after feedback's requests): a few helpdesk
tickets of the accounts waiting on the demo's bugs carry those bugs' tracker keys, so the request page shows
the tickets about it (the helpdesk ↔ tracker loop of issue 13)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from accounts.models import Organization
from feedback.demo_requests import BUG_KEYS
from feedback.models_requests import FeatureRequestLink

from .models import Ticket

__all__ = ["seed"]


def seed(
    organization: Organization, *, seed: int, today: date, log: Callable[[str], None] | None = None
) -> dict[str, int]:
    tagged = 0
    for key in BUG_KEYS:
        accounts = FeatureRequestLink.all_orgs.filter(
            organization_id=organization.pk, request__external_issue_key=key
        ).values("account_id")
        ids = list(
            Ticket.all_orgs.filter(organization_id=organization.pk, account_id__in=accounts, issue_key="")
            .order_by("-opened_at", "pk")
            .values_list("pk", flat=True)[:4]
        )
        tagged += Ticket.all_orgs.filter(pk__in=ids).update(issue_key=key)
    return {"tickets_with_issue_keys": tagged}
