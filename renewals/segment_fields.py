"""Segment fields derived from renewals (registered from ``RenewalsConfig.ready``).

- ``days_to_renewal``: whole days from today (organization time zone) to the due date of the account's
  earliest **open** renewal (no outcome yet; negative when it is overdue), else to the account's
  ``next_renewal_date`` (the end of its next running contract, kept by the ARR refresh). Empty when the
  account has neither.
"""

from __future__ import annotations

from django.db.models import DateField, F, OuterRef, Subquery
from django.db.models.functions import Coalesce

from accounts.segments import Derived, RuleContext, register_derived


def renewal_due(ctx: RuleContext) -> Coalesce:
    from .models import Renewal

    open_renewals = Renewal.all_orgs.filter(
        organization_id=OuterRef("organization_id"), account_id=OuterRef("pk"), outcome=""
    ).order_by("due_date")
    return Coalesce(
        Subquery(open_renewals.values("due_date")[:1], output_field=DateField()),
        F("next_renewal_date"),
        output_field=DateField(),
    )


def register() -> None:
    register_derived("days_to_renewal", Derived(until=renewal_due, moment="date"), label="Days to renewal")
