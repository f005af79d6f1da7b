"""What the work queue adds to the pages of ``accounts`` (through :mod:`accounts.composition`, registered in
:class:`playbooks.apps.PlaybooksConfig.ready`): the CTA panel of Account 360, and on My book the open-CTA
column, the "My open CTAs" panel and the "My tasks due" panel (spec §7.1, §7.2).

Every provider costs a fixed number of queries, whatever the number of CTAs, tasks or rows.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import Any

from django.db.models import Count, F, Prefetch, Q
from django.http import HttpRequest
from django.utils import timezone

from . import ctas
from .choices import CtaOutcome, CtaStatus, SnoozeReason
from .models import Cta, CtaTask

#: Account 360 lists the closed CTAs of the last RECENT_DAYS days, at most RECENT_LIMIT of them.
RECENT_DAYS = 90
RECENT_LIMIT = 5
#: How many of my open CTAs and tasks My book lists (the work queue has the rest).
BOOK_LIMIT = 8


def _tasks_prefetch() -> Prefetch:
    return Prefetch("tasks", queryset=CtaTask.objects.select_related("assignee").order_by("position", "pk"))


def account_ctas(request: HttpRequest, account: Any) -> dict[str, Any]:
    """Account 360's CTA panel: the open CTAs (snoozed ones included, marked) and the recently closed ones,
    each with its tasks; whether the reader may snooze or complete each. Two queries."""
    today = timezone.localdate()
    since = timezone.now() - dt.timedelta(days=RECENT_DAYS)
    rows = list(
        Cta.objects.filter(account=account)
        .filter(Q(status=CtaStatus.OPEN) | Q(closed_at__gte=since))
        .select_related("type", "reason", "owner")
        .prefetch_related(_tasks_prefetch())
        .order_by(F("due_date").asc(nulls_last=True), "-priority_score", "-closed_at", "pk")
    )
    actor = request.actor  # type: ignore[attr-defined]
    open_cards, recent = [], []
    for cta in rows:
        cta.account = account  # the page's account: no query per CTA for the permission check
        if cta.is_open:
            open_cards.append(
                {"cta": cta, "snoozed": cta.is_snoozed(today), "can_write": ctas.can_write_cta(actor, cta)}
            )
        else:
            recent.append(cta)
    recent.sort(key=lambda cta: cta.closed_at, reverse=True)
    return {
        "cta_panel": {
            "open": open_cards,
            "recent": recent[:RECENT_LIMIT],
            "today": today,
            "min_snooze": today + dt.timedelta(days=1),
            "default_snooze": today + dt.timedelta(days=7),
            "snooze_reasons": SnoozeReason.choices,
            "outcomes": CtaOutcome.choices,
            "next": request.get_full_path(),
        }
    }


def open_cta_counts(request: HttpRequest, account_ids: list[int]) -> dict[int, int]:
    """My book's column: open CTAs (snoozed ones left out: they are not work today) per account shown."""
    if not account_ids:
        return {}
    today = timezone.localdate()
    rows = (
        Cta.objects.filter(account_id__in=account_ids, status=CtaStatus.OPEN)
        .exclude(snoozed_until__gt=today)
        .order_by()
        .values("account_id")
        .annotate(n=Count("id"))
    )
    return {row["account_id"]: row["n"] for row in rows}


class MyWork:
    """My book's work panels for the signed-in member, computed only when the page shows them (the panels
    are on the member's own book, not on "All accounts"): my open CTAs (count and the most urgent), and my
    open tasks due, by overdue, today and the rest of the next 7 days. Three queries when shown."""

    def __init__(self, request: HttpRequest) -> None:
        self.user = request.user
        self.today = timezone.localdate()

    def _open_ctas(self) -> Any:
        return Cta.objects.filter(owner=self.user, status=CtaStatus.OPEN).exclude(snoozed_until__gt=self.today)

    @cached_property
    def cta_summary(self) -> dict[str, int]:
        return self._open_ctas().aggregate(open=Count("id"), overdue=Count("id", filter=Q(due_date__lt=self.today)))

    @cached_property
    def ctas(self) -> list[Cta]:
        return list(
            self._open_ctas()
            .select_related("account", "type", "reason")
            .order_by(F("due_date").asc(nulls_last=True), "-priority_score", "pk")[:BOOK_LIMIT]
        )

    @cached_property
    def tasks(self) -> dict[str, list[CtaTask]]:
        week_end = self.today + dt.timedelta(days=7)
        rows = (
            CtaTask.objects.filter(
                assignee=self.user, done_at__isnull=True, cta__status=CtaStatus.OPEN, due_date__lte=week_end
            )
            .exclude(cta__snoozed_until__gt=self.today)
            .select_related("cta__account")
            .order_by("due_date", "pk")
        )
        groups: dict[str, list[CtaTask]] = {"overdue": [], "today": [], "week": []}
        for task in rows:
            key = "overdue" if task.due_date < self.today else "today" if task.due_date == self.today else "week"
            groups[key].append(task)
        return groups

    @cached_property
    def tasks_due(self) -> int:
        return sum(len(group) for group in self.tasks.values())


def my_book_context(request: HttpRequest) -> dict[str, Any]:
    """My book's context from the work queue: a lazy :class:`MyWork` (no query unless a panel shows it)."""
    return {"my_work": MyWork(request)}


def detractor_ctas(request: HttpRequest, account_ids: list[int]) -> dict[int, dict[str, Any]]:
    """The VoC dashboard's detractor column (``voice-detractors``): per account shown, its open CTAs (snoozed
    ones included, with their date) and the most recent of them. One query."""
    if not account_ids:
        return {}
    out: dict[int, dict[str, Any]] = {}
    rows = (
        Cta.objects.filter(account_id__in=account_ids, status=CtaStatus.OPEN)
        .select_related("owner")
        .order_by("account_id", "-opened_at", "-pk")
    )
    for cta in rows:
        entry = out.setdefault(cta.account_id, {"count": 0, "latest": cta})
        entry["count"] += 1
    return out
