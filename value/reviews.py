"""Business reviews (QBR / EBR): start one, close it (issue 15, item 3).

:func:`start_review` opens a review of an account over a period (by default the last full fiscal quarter).
:func:`close_review` closes it in one transaction: an :class:`~accounts.models.Activity` of the review's kind
on the account's timeline (with the summary), the next review's objectives on the success plan, the plan's
``last_reviewed_at`` / ``next_review_at``, the report frozen in ``snapshot`` (a closed review's page, PDF and
API answer from it, so later data never changes what was presented) and the domain event
``business_review.closed``. The review row is locked first, so a double submit closes it once.

Who: the account's writers (``Actor.can_write_account``: its CSM, their team lead, an admin); viewers read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.choices import ActivityType, ObjectiveStatus
from accounts.models import Account, Activity, Objective, Organization, SuccessPlan
from accounts.services import Actor
from cs_platform.events import record_event
from renewals.analytics import fiscal_quarter

from .choices import ReviewKind, ReviewStatus
from .models import BusinessReview
from .report import live_report

__all__ = [
    "MAX_PERIOD_DAYS",
    "NextObjective",
    "ReviewPermissionDenied",
    "close_review",
    "default_period",
    "review_payload",
    "start_review",
]

#: A review covers at most about a year (an EBR's span); longer is almost certainly a typo.
MAX_PERIOD_DAYS = 366
#: At most this many objectives are set for the next review in one close.
MAX_NEXT_OBJECTIVES = 10


class ReviewPermissionDenied(PermissionDenied):
    """The actor may read the account but not write its reviews."""


@dataclass(frozen=True)
class NextObjective:
    """One objective set for the next review: the customer's measure with its baseline and target."""

    title: str
    measure: str = ""
    baseline: str = ""
    target: str = ""
    due_date: dt.date | None = None


def default_period(organization: Organization, *, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The last full fiscal quarter before ``today`` (the organization's fiscal year start)."""
    today = today or timezone.localdate()
    first, _last, _label = fiscal_quarter(organization, today)
    start, end, _label = fiscal_quarter(organization, first - dt.timedelta(days=1))
    return start, end


def _check_write(by: Actor, account: Account) -> None:
    if not by.can_write_account(account):
        raise ReviewPermissionDenied("Only the account's CSM, their team lead or an admin can change its reviews.")


def _check_period(start: dt.date, end: dt.date) -> None:
    if end < start:
        raise ValidationError({"period_end": ["The period must end on or after its start."]})
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationError({"period_end": [f"A review covers at most {MAX_PERIOD_DAYS} days."]})


def start_review(
    organization: Organization,
    account: Account,
    *,
    by: Actor,
    kind: str = ReviewKind.QBR,
    period_start: dt.date | None = None,
    period_end: dt.date | None = None,
    today: dt.date | None = None,
) -> BusinessReview:
    """Open a review of ``account``; the period defaults to the last full fiscal quarter."""
    if account.organization_id != organization.pk or by.organization.pk != organization.pk:
        raise ValueError("The account is not in this organization.")
    _check_write(by, account)
    if kind not in ReviewKind.values:
        raise ValidationError({"kind": [f"Choose one of {', '.join(ReviewKind.values)}."]})
    if period_start is None or period_end is None:
        default_start, default_end = default_period(organization, today=today)
        period_start = period_start or default_start
        period_end = period_end or default_end
    _check_period(period_start, period_end)
    return BusinessReview.all_orgs.create(
        organization=organization,
        account=account,
        kind=kind,
        period_start=period_start,
        period_end=period_end,
        created_by=by.user,
    )


def _objective_snapshot(objective: Objective) -> dict[str, Any]:
    return {
        "id": objective.pk,
        "title": objective.title,
        "measure": objective.customer_measure,
        "baseline": objective.baseline,
        "target": objective.target,
        "due_date": objective.due_date.isoformat() if objective.due_date else None,
    }


def review_payload(review: BusinessReview) -> dict[str, Any]:
    """The payload of ``business_review.closed`` (docs/events.md)."""
    account = review.account
    snapshot = review.snapshot or {}
    return {
        "id": review.pk,
        "kind": review.kind,
        "account": account.pk,
        "account_external_id": account.external_id,
        "account_name": account.name,
        "period_start": review.period_start,
        "period_end": review.period_end,
        "held_on": review.held_on,
        "summary": review.summary,
        "activity": review.activity_id,
        "next_review_on": snapshot.get("next_review_on"),
        "next_objectives": [o["id"] for o in snapshot.get("next_objectives", [])],
        "closed_by": review.closed_by.email if review.closed_by else None,
    }


def close_review(
    organization: Organization,
    review: BusinessReview,
    *,
    by: Actor,
    held_on: dt.date,
    summary: str,
    next_review_on: dt.date | None = None,
    next_objectives: list[NextObjective] | tuple[NextObjective, ...] = (),
    now: dt.datetime | None = None,
) -> BusinessReview:
    """Close ``review`` (see the module doc); returns it closed. ``ValidationError`` when it is closed
    already, or the dates do not hold (held before the period started, next review before it was held)."""
    if review.organization_id != organization.pk or by.organization.pk != organization.pk:
        raise ValueError("The review is not in this organization.")
    now = now or timezone.now()
    summary = (summary or "").strip()
    errors: dict[str, list[str]] = {}
    if not summary:
        errors["summary"] = ["Say what was reviewed and agreed."]
    if held_on < review.period_start:
        errors["held_on"] = ["A review is held after its period starts."]
    if next_review_on is not None and next_review_on <= held_on:
        errors["next_review_on"] = ["The next review comes after this one."]
    if len(next_objectives) > MAX_NEXT_OBJECTIVES:
        errors["next_objectives"] = [f"Set at most {MAX_NEXT_OBJECTIVES} objectives at once."]
    for objective in next_objectives:
        if not objective.title.strip():
            errors["next_objectives"] = ["Every objective needs a title."]
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        review = (
            BusinessReview.all_orgs.select_for_update(of=("self",))
            .select_related("account__owner")
            .get(organization_id=organization.pk, pk=review.pk)
        )
        account = review.account
        _check_write(by, account)
        if review.status != ReviewStatus.OPEN:
            raise ValidationError({"status": ["This review is closed already."]})

        # The report as presented, before this close adds the next objectives to the plan.
        report = live_report(organization, review, now=now)
        # Held at noon of the organization's day: the timeline shows it on that day in its time zone.
        tz = ZoneInfo(organization.time_zone or "UTC")
        activity = Activity.all_orgs.create(
            organization=organization,
            account=account,
            type=ActivityType.QBR if review.kind == ReviewKind.QBR else ActivityType.EBR,
            occurred_at=dt.datetime.combine(held_on, dt.time(12), tzinfo=tz),
            author=by.user,
            summary=summary,
        )
        plan, _created = SuccessPlan.all_orgs.get_or_create(
            organization=organization, account=account, defaults={"title": "Success plan"}
        )
        created = [
            Objective.all_orgs.create(
                organization=organization,
                plan=plan,
                title=o.title.strip()[:200],
                customer_measure=o.measure.strip()[:200],
                baseline=o.baseline.strip()[:80],
                target=o.target.strip()[:80],
                due_date=o.due_date,
                status=ObjectiveStatus.NOT_STARTED,
            )
            for o in next_objectives
        ]
        plan.last_reviewed_at = held_on
        plan.next_review_at = next_review_on
        plan.save(update_fields=["last_reviewed_at", "next_review_at", "updated_at"])

        review.status = ReviewStatus.CLOSED
        review.held_on = held_on
        review.summary = summary
        review.activity = activity
        review.closed_by = by.user
        review.closed_at = now
        review.snapshot = {
            "report": report,
            "next_review_on": next_review_on.isoformat() if next_review_on else None,
            "next_objectives": [_objective_snapshot(o) for o in created],
        }
        review.save(
            update_fields=[
                "status", "held_on", "summary", "activity", "closed_by", "closed_at", "snapshot", "updated_at"
            ]
        )  # fmt: skip
        record_event(organization.pk, "business_review.closed", review.pk, review_payload(review))
    return review
