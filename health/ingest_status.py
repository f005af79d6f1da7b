"""What the tracking API received, counted and did not count, for the organization's admins: the
ingestion status page (``/o/<slug>/admin/ingestion/``) and ``GET /api/v1/ingestion-status/``.

Every event that reaches Retain ends up in exactly one visible place: counted into daily usage,
waiting (for the rollup, or for a ``group`` call linking its user), or in a counter saying why it was
not counted (duplicate, ignored call, refused request, never attributed). See ``docs/ingestion.md``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Min, Q, Value
from django.db.models.functions import Coalesce, NullIf

from accounts.models import Organization

from .ingest_state import local_today
from .models import EventType, IngestionRefusal, IngestionStat, ProductUser, UsageEvent, UsageRollupState

__all__ = ["COUNTERS", "ingestion_status"]

#: Every counter, in display order: name → (label, what it means). Counters of what was *not* counted
#: say why.
COUNTERS: dict[str, tuple[str, str]] = {
    "requests_accepted": ("Requests accepted", "Requests answered 200: every event of them stored before the answer."),
    "accepted": ("Events stored", "New track, identify and group events stored."),
    "counted": ("Events counted", "Track events counted into daily usage (/api/v1/usage-metrics/)."),
    "duplicates": (
        "Duplicates (not counted again)",
        "Events whose messageId was already stored, usually a client's retry: skipped, counted once.",
    ),
    "ignored": ("Ignored calls", "page, screen and alias calls: accepted, not used by Retain."),
    "unattributed": (
        "Stored without an account",
        "Track events of a user linked to no account yet: counted once a group call links the user.",
    ),
    "attributed_late": (
        "Attributed later",
        "Such events given their account by a later group call, then counted.",
    ),
    "refused_requests": (
        "Requests refused",
        "Requests answered 4xx (invalid or uncountable events, too large, bad JSON): nothing of them was stored.",
    ),
    "refused_events": ("Events in refused requests", "Events sent in refused requests (none stored; see below)."),
    "unattributed_expired": (
        "Expired without an account",
        "Track events deleted at the end of the retention window because their user was never linked to "
        "an account: never counted.",
    ),
    "purged": (
        "Raw events purged",
        "Raw events deleted after the retention window, already counted (or identify/group calls): no figure changes.",
    ),
}
RECENT_REFUSALS = 20


def ingestion_status(organization: Organization, *, days: int = 30) -> dict[str, Any]:
    """The organization's ingestion figures: what is waiting now, the counters of the last ``days``
    local days (totals and per day, newest first), the last rollup and the recent refusals. Six queries."""
    org_id = organization.pk
    today = local_today(organization)
    since = today - timedelta(days=days - 1)
    per_day: dict[date, dict[str, int]] = defaultdict(dict)
    totals = dict.fromkeys(COUNTERS, 0)
    for day, name, value in (
        IngestionStat.objects.for_org(org_id).filter(date__gte=since).values_list("date", "name", "value")
    ):
        per_day[day][name] = value
        totals[name] = totals.get(name, 0) + value
    tracks = UsageEvent.objects.for_org(org_id).filter(type=EventType.TRACK, rolled_up=False)
    user = NullIf(Coalesce(NullIf("user_id", Value("")), "anonymous_id"), Value(""))
    waiting = tracks.aggregate(
        pending=Count("id", filter=Q(account__isnull=False)),
        pending_oldest=Min("received_at", filter=Q(account__isnull=False)),
        unattributed=Count("id", filter=Q(account__isnull=True)),
        unattributed_users=Count(user, filter=Q(account__isnull=True), distinct=True),
        unattributed_oldest=Min("received_at", filter=Q(account__isnull=True)),
    )
    state = UsageRollupState.objects.for_org(org_id).first()
    users = ProductUser.objects.for_org(org_id).aggregate(
        total=Count("id"), linked=Count("id", filter=Q(contact__isnull=False))
    )
    refusals = list(IngestionRefusal.objects.for_org(org_id).order_by("-id")[:RECENT_REFUSALS])
    return {
        "days": days,
        "since": since,
        "raw_event_retention_days": organization.raw_event_retention_days,
        "waiting": {
            "pending_events": waiting["pending"],
            "pending_oldest_received_at": waiting["pending_oldest"],
            "unattributed_events": waiting["unattributed"],
            "unattributed_users": waiting["unattributed_users"],
            "unattributed_oldest_received_at": waiting["unattributed_oldest"],
        },
        "rollup": {
            "last_run_at": state.last_run_at if state else None,
            "last_run_events": state.last_run_events if state else 0,
            "queued": bool(state and state.scheduled_at),
        },
        "product_users": {"total": users["total"], "linked_to_contacts": users["linked"]},
        "totals": totals,
        "daily": [{"date": day, "counters": per_day[day]} for day in sorted(per_day, reverse=True)],
        "recent_refusals": [
            {
                "received_at": r.received_at,
                "status": r.status,
                "detail": r.detail,
                "events": r.events,
                "errors": r.errors,
            }
            for r in refusals
        ],
    }
