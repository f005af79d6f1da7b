"""Demo business reviews (``seed_demo``, registered by ValueConfig at order 60, after health's score history):
for the largest high-touch accounts with a success plan, current readings on their objectives, a closed QBR
two quarters ago that set objectives, then either a closed QBR of the last quarter (whose report shows the
outcomes of the first one's objectives) or an open one being prepared. Deterministic for a seed and day.

Written directly, like the other demo modules: the closings record their activities and frozen reports but
no ``business_review.closed`` events (seeding is not a change to notify).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from accounts.models import Account, Activity, Objective, Organization, SuccessPlan

from .choices import ReviewKind, ReviewStatus
from .models import BusinessReview
from .report import live_report
from .reviews import default_period

__all__ = ["seed", "wipe"]

#: How many accounts get reviews, and how many of those have their last quarter's review closed already.
REVIEWED_ACCOUNTS = 8
CLOSED_LAST_QUARTER = 5
#: Accounts whose objectives get a current reading.
MEASURED_ACCOUNTS = 40

NEXT_OBJECTIVES = [
    ("Expand to the finance team", "Licensed finance users", "0", "25"),
    ("Cut onboarding time for new hires", "Days to first productive use", "14", "5"),
    ("Adopt automated health alerts", "Alerts acted on per month", "2", "20"),
    ("Executive sponsor review every quarter", "Sponsor meetings held", "1", "4"),
]
SUMMARIES = [
    "Reviewed adoption and the success plan with the sponsor; agreed next quarter's objectives.",
    "Walked through usage, support and NPS; the customer wants to expand once onboarding time drops.",
    "Good quarter: targets mostly met. Set stretch objectives and a date for the executive review.",
]
NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(%?)\s*$")


def reading(baseline: str, target: str, progress: int) -> str:
    """The current reading ``progress`` % of the way from baseline to target ("55%" → "75%" at 50 → "65%");
    ``""`` when either end is not a number."""
    a, b = NUMBER.match(baseline or ""), NUMBER.match(target or "")
    if not a or not b:
        return ""
    try:
        low, high = Decimal(a.group(1)), Decimal(b.group(1))
    except InvalidOperation:
        return ""
    value = low + (high - low) * Decimal(progress) / 100
    text = f"{value.quantize(Decimal('1')) if value == value.to_integral() else value.quantize(Decimal('0.1'))}"
    return text + b.group(2)


def wipe(organization: Organization) -> None:
    """Delete the organization's business reviews before its accounts go (``seed_demo`` replacing a demo)."""
    BusinessReview.all_orgs.filter(organization_id=organization.pk)._raw_delete(BusinessReview.all_orgs.db)


def _measure(org_id: int, account_ids: list[int], today: date, rng: random.Random) -> int:
    objectives = list(Objective.all_orgs.filter(organization_id=org_id, plan__account_id__in=account_ids))
    for objective in objectives:
        objective.current = reading(objective.baseline, objective.target, objective.progress)
        objective.measured_on = today - timedelta(days=rng.randint(1, 20)) if objective.current else None
    Objective.all_orgs.bulk_update(objectives, ["current", "measured_on"], batch_size=500)
    return len(objectives)


def _close(
    organization: Organization,
    review: BusinessReview,
    *,
    held_on: date,
    next_review_on: date,
    rng: random.Random,
    now: datetime,
) -> None:
    """What :func:`value.reviews.close_review` does, without the domain event."""
    account = review.account
    report = live_report(organization, review, now=now)
    summary = rng.choice(SUMMARIES)
    activity = Activity.all_orgs.create(
        organization=organization,
        account=account,
        type=review.kind,
        occurred_at=datetime.combine(held_on, time(15), tzinfo=UTC),
        author_id=account.owner_id,
        summary=summary,
    )
    plan, _ = SuccessPlan.all_orgs.get_or_create(organization=organization, account=account)
    created = []
    for title, measure, baseline, target in rng.sample(NEXT_OBJECTIVES, 2):
        progress = rng.choice([20, 40, 60, 100])
        created.append(
            Objective.all_orgs.create(
                organization=organization,
                plan=plan,
                title=title,
                customer_measure=measure,
                baseline=baseline,
                target=target,
                due_date=next_review_on,
                status="achieved" if progress == 100 else "on_track",
                progress=progress,
                current=reading(baseline, target, progress),
                measured_on=min(now.date(), next_review_on) - timedelta(days=3),
            )
        )
    plan.last_reviewed_at, plan.next_review_at = held_on, next_review_on
    plan.save(update_fields=["last_reviewed_at", "next_review_at", "updated_at"])
    review.status, review.held_on, review.summary = ReviewStatus.CLOSED, held_on, summary
    review.activity, review.closed_by_id, review.closed_at = activity, account.owner_id, now
    review.snapshot = {
        "report": report,
        "next_review_on": next_review_on.isoformat(),
        "next_objectives": [
            {
                "id": o.pk,
                "title": o.title,
                "measure": o.customer_measure,
                "baseline": o.baseline,
                "target": o.target,
                "due_date": o.due_date.isoformat() if o.due_date else None,
            }
            for o in created
        ],
    }
    review.save()


def seed(
    organization: Organization, *, seed: int, today: date, log: Callable[[str], None] | None = None
) -> dict[str, int]:
    """accounts.demo.seed_demo's hook: current readings and business reviews; returns row counts."""
    rng = random.Random(f"{seed}:business-reviews")
    org_id = organization.pk
    accounts = list(
        Account.all_orgs.filter(
            organization_id=org_id,
            touch_model="high",
            churned_at__isnull=True,
            owner__isnull=False,
            success_plan__isnull=False,
        )
        .select_related("owner")
        .order_by("-arr", "pk")[:MEASURED_ACCOUNTS]
    )
    measured = _measure(org_id, [a.pk for a in accounts], today, rng)
    last_start, last_end = default_period(organization, today=today)
    before_start, before_end = default_period(organization, today=last_start)
    now = datetime.combine(today, time(12), tzinfo=UTC)
    reviews = 0
    for index, account in enumerate(accounts[:REVIEWED_ACCOUNTS]):
        older = BusinessReview.all_orgs.create(
            organization=organization,
            account=account,
            kind=ReviewKind.QBR,
            period_start=before_start,
            period_end=before_end,
            created_by_id=account.owner_id,
        )
        held = min(before_end + timedelta(days=rng.randint(7, 20)), today)
        _close(organization, older, held_on=held, next_review_on=last_end + timedelta(days=14), rng=rng, now=now)
        # The second quarter's review: an EBR now and then (the executive sponsor's yearly review).
        kind = ReviewKind.EBR if index % 4 == 3 else ReviewKind.QBR
        latest = BusinessReview.all_orgs.create(
            organization=organization,
            account=account,
            kind=kind,
            period_start=last_start,
            period_end=last_end,
            created_by_id=account.owner_id,
        )
        reviews += 2
        if index < CLOSED_LAST_QUARTER and last_end < today:
            held = min(last_end + timedelta(days=rng.randint(3, 12)), today)
            _close(organization, latest, held_on=held, next_review_on=held + timedelta(days=91), rng=rng, now=now)
    if log:
        log(f"business reviews: {reviews} ({measured} objectives measured)")
    return {"business_reviews": reviews, "objectives_measured": measured}
