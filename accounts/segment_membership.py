"""Stored segment membership: refresh (set-based), preview, and the debounced trigger (docs/segments.md).

:func:`refresh_memberships` computes each segment's current members with its compiled rules (one SQL
condition), diffs them against the stored :class:`~accounts.models.SegmentMembership` rows in SQL (who
entered: matching and not stored; who left: stored and no longer matching), and in one transaction per
segment inserts and deletes those rows in bulk, writes a :class:`~accounts.models.SegmentTransition` for
each, and records the ``segment.entered`` / ``segment.left`` domain events. Running it twice changes
nothing the second time.

A segment's **first** refresh (``refreshed_at`` empty: a new segment) fills it with transitions but
records no events: an account that matched all along did not just "enter". A segment whose stored
rules are invalid is skipped (its members stay as they were; the problems are reported), so a broken
rule set never turns into a storm of ``segment.left``.

What keeps it current: the beat's full refresh of every organization (``SEGMENT_REFRESH_SCHEDULE``),
a refresh of one segment after it is saved, and :func:`schedule_refresh`, which the ``segments``
consumer of the domain events (account created or updated, health colour changed, renewal forecast
changed) calls to refresh the organization within ``SEGMENT_REFRESH_DEBOUNCE_SECONDS``, once per burst.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from cs_platform.events import NewEvent, record_events
from cs_platform.organizations import Organization
from cs_platform.redis_client import shared_redis

from .models import Account, Segment, SegmentMembership, SegmentTransition, TransitionKind
from .segments import compile_or_none, rule_problems

__all__ = [
    "MEMBERSHIP_EVENTS",
    "RefreshResult",
    "preview_change",
    "preview_segment",
    "queue_segment_refresh",
    "refresh_memberships",
    "schedule_refresh",
    "take_scheduled",
]

#: Domain events after which memberships may have changed: the consumer refreshes the organization.
MEMBERSHIP_EVENTS = ("account.created", "account.updated", "health.color_changed", "renewal.forecast_changed")
SAMPLE_SIZE = 10
DEBOUNCE_SECONDS = 10  # the default of settings.SEGMENT_REFRESH_DEBOUNCE_SECONDS
KEY_PREFIX = "retain:segments:refresh"


@dataclass
class RefreshResult:
    """What one refresh did, per segment id: accounts that entered, left, and the members now."""

    entered: dict[int, int] = field(default_factory=dict)
    left: dict[int, int] = field(default_factory=dict)
    members: dict[int, int] = field(default_factory=dict)
    invalid: dict[int, list[str]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {
            "segments": len(self.members),
            "entered": sum(self.entered.values()),
            "left": sum(self.left.values()),
            "invalid_segments": len(self.invalid),
        }


def _payload(segment: Segment, account: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "segment": segment.pk,
        "segment_name": segment.name,
        "account": account["id"],
        "account_external_id": account["external_id"],
        "account_name": account["name"],
        "at": at,
    }


def _refresh_one(organization: Organization, segment_id: int, now: datetime, result: RefreshResult) -> None:
    with transaction.atomic():
        # The segment row is the lock: two refreshes of one segment run one after the other (the second
        # diffs against what the first stored), never both inserting the same entrants.
        locked = Segment.objects.for_org(organization).filter(pk=segment_id)
        if connection.features.has_select_for_update:
            locked = locked.select_for_update()
        segment = locked.first()
        if segment is None:  # deleted meanwhile
            return
        condition = compile_or_none(segment.rules, organization=organization)
        if condition is None:
            result.invalid[segment.pk] = rule_problems(segment.rules)
            return
        current = Account.objects.for_org(organization).filter(condition)
        stored = SegmentMembership.objects.for_org(organization).filter(segment=segment)
        fields = ("id", "external_id", "name")
        entered = list(current.exclude(pk__in=stored.values("account_id")).order_by("pk").values(*fields))
        left_ids = list(stored.exclude(account_id__in=current.values("pk")).values_list("account_id", flat=True))
        left = list(Account.objects.for_org(organization).filter(pk__in=left_ids).order_by("pk").values(*fields))

        org_id = organization.pk
        SegmentMembership.all_orgs.bulk_create(
            [
                SegmentMembership(organization_id=org_id, segment=segment, account_id=a["id"], entered_at=now)
                for a in entered
            ],
            ignore_conflicts=True,  # a second fence behind the lock
            batch_size=2000,
        )
        if left_ids:
            stored.filter(account_id__in=left_ids).delete()

        def transition(account: dict[str, Any], kind: str) -> SegmentTransition:
            return SegmentTransition(
                organization_id=org_id, segment=segment, account_id=account["id"], kind=kind, at=now
            )

        SegmentTransition.all_orgs.bulk_create(
            [transition(a, TransitionKind.ENTERED) for a in entered]
            + [transition(a, TransitionKind.LEFT) for a in left],
            batch_size=2000,
        )
        if segment.refreshed_at is not None:  # the first fill of a new segment is not "entering"
            record_events(
                org_id,
                [
                    *(NewEvent("segment.entered", a["id"], _payload(segment, a, now)) for a in entered),
                    *(NewEvent("segment.left", a["id"], _payload(segment, a, now)) for a in left),
                ],
            )
        # A queryset update: no full_clean, no updated_at (the rules did not change).
        Segment.all_orgs.filter(pk=segment.pk).update(refreshed_at=now)
        result.entered[segment.pk] = len(entered)
        result.left[segment.pk] = len(left)
        result.members[segment.pk] = stored.count()


def refresh_memberships(
    organization_id: int, segment_ids: Iterable[int] | None = None, *, now: datetime | None = None
) -> RefreshResult:
    """Bring the stored members of the organization's segments (all, or ``segment_ids``) in line with their
    rules now; see the module docstring. One transaction per segment; the number of queries per segment does
    not depend on the number of accounts."""
    organization = Organization.objects.get(pk=organization_id)
    now = now or timezone.now()
    segments = Segment.objects.for_org(organization)
    if segment_ids is not None:
        segments = segments.filter(pk__in=list(segment_ids))
    result = RefreshResult()
    for segment_id in segments.order_by("position", "pk").values_list("pk", flat=True):
        _refresh_one(organization, segment_id, now, result)
    return result


def preview_segment(organization: Organization, rules: Any, *, sample: int = SAMPLE_SIZE) -> dict[str, Any]:
    """How many accounts match ``rules`` now, their ARR, and the first ``sample`` by ARR (then name): what
    the editor shows before saving. Invalid rules match nothing and list their problems. Two queries."""
    problems = rule_problems(rules)
    condition = None if problems else compile_or_none(rules, organization=organization)
    if condition is None:
        return {"accounts": 0, "arr": Decimal("0"), "problems": problems, "sample": []}
    matching = Account.objects.for_org(organization).filter(condition)
    totals = matching.aggregate(n=Count("id"), arr=Sum("arr"))
    rows = list(matching.select_related("owner").order_by("-arr", "name", "pk")[:sample])
    return {"accounts": totals["n"], "arr": totals["arr"] or Decimal("0"), "problems": [], "sample": rows}


def _side(accounts: Any, sample: int) -> dict[str, Any]:
    totals = accounts.aggregate(n=Count("id"), arr=Sum("arr"))
    rows = list(accounts.select_related("owner").order_by("-arr", "name", "pk")[:sample])
    return {"accounts": totals["n"], "arr": totals["arr"] or Decimal("0"), "sample": rows}


def preview_change(
    organization: Organization, rules: Any, *, against: Any, sample: int = SAMPLE_SIZE
) -> dict[str, Any]:
    """:func:`preview_segment` of ``rules``, plus who would **enter** and **leave** (count, ARR, the first
    ``sample`` by ARR) if ``rules`` replaced ``against``, both evaluated now (not the stored members, which
    may be up to one refresh old). Invalid ``against`` rules match nobody. Writes nothing; eight queries."""
    result = preview_segment(organization, rules, sample=sample)
    accounts = Account.objects.for_org(organization)
    new = None if result["problems"] else compile_or_none(rules, organization=organization)
    old = compile_or_none(against, organization=organization)
    now_in = accounts.filter(new) if new is not None else accounts.none()
    was_in = accounts.filter(old) if old is not None else accounts.none()
    result["entering"] = _side(now_in.exclude(pk__in=was_in.values("pk")), sample)
    result["leaving"] = _side(was_in.exclude(pk__in=now_in.values("pk")), sample)
    return result


# --- Debounced refresh after domain events ------------------------------------------------------------


#: The shared per-process client (``None`` without Redis); a name of its own so tests can reach it.
_redis = shared_redis


def debounce_seconds() -> int:
    """The countdown of a scheduled refresh, read at call time (tests shorten it)."""
    return int(getattr(settings, "SEGMENT_REFRESH_DEBOUNCE_SECONDS", DEBOUNCE_SECONDS))


def _key(organization_id: int) -> str:
    return f"{KEY_PREFIX}:{organization_id}:scheduled"


#: Task names (accounts.tasks), looked up by name: the tasks import this module, not the other way round.
REFRESH_TASK = "accounts.tasks.refresh_segment_memberships"
REFRESH_SOON_TASK = "accounts.tasks.refresh_segments_soon"
JOB_KIND = "refresh_segments"


def _enqueue(organization_id: int, countdown: int) -> None:
    from celery import current_app

    from cs_platform.jobs import create_job

    job = create_job(organization_id=organization_id, kind=JOB_KIND, params={"trigger": "events"})
    current_app.tasks[REFRESH_SOON_TASK].apply_async((organization_id,), {"job_id": job.pk}, countdown=countdown)


def queue_segment_refresh(organization_id: int, segment_id: int) -> None:
    """Refresh one segment once the current transaction commits (after it was saved): a recorded run."""

    def on_commit() -> None:
        from celery import current_app

        from cs_platform.jobs import create_job

        job = create_job(
            organization_id=organization_id, kind=JOB_KIND, params={"trigger": "saved", "segment": segment_id}
        )
        current_app.tasks[REFRESH_TASK].apply_async((organization_id, [segment_id]), {"job_id": job.pk})

    transaction.on_commit(on_commit, robust=True)


def schedule_refresh(organization_id: int) -> None:
    """Refresh the organization's segments about :func:`debounce_seconds` after the current transaction
    commits, once for a burst of changes: the first change sets a Redis flag (``SET NX``) and queues the
    task with the countdown; later ones find the flag and join that run. The task drops the flag before
    it computes, so a change committed during a run schedules the next one (none is lost). Without
    Redis (the demo) every committed transaction queues its own refresh."""

    def on_commit() -> None:
        countdown = debounce_seconds()
        client = _redis()
        if client is None:
            _enqueue(organization_id, countdown)
            return
        # The flag outlives the countdown by far, so a slow worker never finds it expired mid-wait.
        if client.set(_key(organization_id), "1", nx=True, ex=max(countdown, DEBOUNCE_SECONDS) * 30):
            _enqueue(organization_id, countdown)

    transaction.on_commit(on_commit, robust=True)


def take_scheduled(organization_id: int) -> None:
    """Drop the organization's "refresh scheduled" flag (the task, before it computes)."""
    client = _redis()
    if client is not None:
        client.delete(_key(organization_id))


def on_event(event: Any) -> None:
    """The ``segments`` consumer of the domain events of :data:`MEMBERSHIP_EVENTS`."""
    schedule_refresh(event.organization_id)


def _segment_saved(sender: Any, instance: Segment, raw: bool = False, **kwargs: Any) -> None:
    if not raw:
        queue_segment_refresh(instance.organization_id, instance.pk)


def connect() -> None:
    """Wire the consumer and the refresh after a segment is saved (``AccountsConfig.ready``)."""
    from django.db.models.signals import post_save

    from cs_platform.events import register_consumer

    register_consumer("segments", on_event, names=MEMBERSHIP_EVENTS)
    post_save.connect(_segment_saved, sender=Segment, dispatch_uid="accounts.segments.refresh_on_save")
