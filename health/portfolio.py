"""The Portfolio figures (spec §7 screen 3, §8 ``/api/v1/metrics/portfolio/``), set-based.

Definitions (``docs/metrics.md``):

- The portfolio is the organization's live accounts (``churned_at`` empty). Colours are the
  **effective** colours of ``HealthScore`` (an active override wins); an account without a score row,
  or whose score is null with no override, is **unscored** (never counted as green).
- **ARR at risk** = the current ARR of red accounts (own ARR, not hierarchy ARR, so a parent and its
  children are not counted twice).
- By segment: every segment of the organization, each compiled to SQL with ``compile_rules``; an
  account may sit in several segments, so segment rows need not add up to the total.
- By owner: one row per owner (unowned accounts under ``owner: null``).

Query budget, whatever the number of accounts: segments (1), overall + every segment in one
conditional aggregation (1), owners (1); the page adds the trend (1, cached per organization and day
for past days), the biggest movers (1) and capacity (2).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import Account

from .models import HealthColor, HealthScore, HealthSnapshot

__all__ = ["COLORS", "TREND_DAYS", "biggest_movers", "color_trend", "portfolio_metrics", "portfolio_rows"]

COLORS = (HealthColor.RED.value, HealthColor.YELLOW.value, HealthColor.GREEN.value)
BUCKETS = (*COLORS, "unscored")
TREND_DAYS = 90
ZERO = Decimal("0.00")


def _bucket_q(bucket: str) -> Q:
    if bucket == "unscored":
        return Q(health__isnull=True) | Q(health__color="")
    return Q(health__color=bucket)


def _aggregates(prefix: str, where: Q | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for bucket in BUCKETS:
        condition = _bucket_q(bucket) if where is None else (where & _bucket_q(bucket))
        out[f"{prefix}{bucket}__n"] = Count("id", filter=condition)
        out[f"{prefix}{bucket}__arr"] = Sum("arr", filter=condition)
    return out


def _split(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    counts = {b: row.get(f"{prefix}{b}__n") or 0 for b in BUCKETS}
    arr = {b: (row.get(f"{prefix}{b}__arr") or ZERO) for b in BUCKETS}
    total_n = sum(counts.values())
    total_arr = sum(arr.values(), ZERO)
    return {
        "accounts": total_n,
        "arr": total_arr,
        "counts": counts,
        "arr_by_color": arr,
        "arr_at_risk": arr["red"],
        "unscored": counts["unscored"],
    }


def live_accounts(organization: Any) -> Any:
    return Account.objects.for_org(organization).filter(churned_at__isnull=True)


def portfolio_rows(organization: Any) -> dict[str, Any]:
    """Overall, per segment and per owner colour splits (counts and ARR as ``Decimal``). Three queries."""
    from playbooks.models import Segment
    from playbooks.segments import SegmentRuleError, compile_rules

    segments = list(Segment.objects.for_org(organization).order_by("position", "name"))
    compiled: list[tuple[Any, Q | None]] = []
    for segment in segments:
        try:
            compiled.append((segment, compile_rules(segment.rules)))
        except SegmentRuleError:
            compiled.append((segment, None))  # shown as invalid, never silently as "everyone"
    aggregates = _aggregates("all_")
    for segment, condition in compiled:
        if condition is not None:
            aggregates.update(_aggregates(f"s{segment.pk}_", condition))
    accounts = live_accounts(organization)
    row = accounts.aggregate(**aggregates)
    by_segment = []
    for segment, condition in compiled:
        entry = {"segment": segment.pk, "name": segment.name, "valid": condition is not None}
        entry.update(_split(row, f"s{segment.pk}_") if condition is not None else _split({}))
        by_segment.append(entry)
    owner_rows = (
        accounts.values("owner_id", "owner__first_name", "owner__last_name", "owner__email")
        .annotate(**_aggregates(""))
        .order_by("owner__first_name", "owner__last_name", "owner__email")
    )
    by_owner = []
    for owner in owner_rows:
        name = f"{owner['owner__first_name'] or ''} {owner['owner__last_name'] or ''}".strip()
        entry = {"owner": owner["owner_id"], "name": name or owner["owner__email"] or None}
        entry.update(_split(owner))
        by_owner.append(entry)
    by_owner.sort(key=lambda e: (e["owner"] is None, -e["arr_by_color"]["red"], (e["name"] or "").lower()))
    return {"overall": _split(row, "all_"), "by_segment": by_segment, "by_owner": by_owner}


def _money(value: Decimal) -> str:
    return f"{Decimal(value):.2f}"


def _public(split: dict[str, Any]) -> dict[str, Any]:
    return {
        "accounts": split["accounts"],
        "arr": _money(split["arr"]),
        "counts": split["counts"],
        "arr_by_color": {k: _money(v) for k, v in split["arr_by_color"].items()},
        "arr_at_risk": _money(split["arr_at_risk"]),
        "unscored": split["unscored"],
    }


def portfolio_metrics(organization: Any) -> dict[str, Any]:
    """The ``/api/v1/metrics/portfolio/`` body: money as decimal strings, colours ``red``/``yellow``/``green``
    plus ``unscored``."""
    rows = portfolio_rows(organization)
    return {
        "currency": organization.currency,
        **_public(rows["overall"]),
        "by_segment": [
            {"segment": s["segment"], "name": s["name"], "valid": s["valid"], **_public(s)} for s in rows["by_segment"]
        ],
        "by_owner": [{"owner": o["owner"], "name": o["name"], **_public(o)} for o in rows["by_owner"]],
    }


def biggest_movers(organization: Any, limit: int = 10) -> list[HealthScore]:
    """The live accounts whose score dropped most over 7 days (``delta_7`` most negative). One query."""
    return list(
        HealthScore.objects.for_org(organization)
        .filter(delta_7__lt=0, account__churned_at__isnull=True)
        .select_related("account__owner")
        .order_by("delta_7", "account__name")[:limit]
    )


def color_trend(organization: Any, *, today: dt.date | None = None, days: int = TREND_DAYS) -> list[dict[str, Any]]:
    """Accounts per computed colour and day over the last ``days`` days, from the snapshots, aggregated in
    SQL (``GROUP BY date, color``). Past days do not change once written, so they are cached per
    organization and day (one hour; a backfill that rewrites past snapshots shows within the hour);
    today's point is counted live from the latest scores. At most two queries."""
    today = today or timezone.localdate()
    start = today - dt.timedelta(days=days - 1)
    key = f"health:portfolio-trend:{organization.pk}:{today.isoformat()}:{days}"
    past = cache.get(key)
    if past is None:
        rows = (
            HealthSnapshot.objects.for_org(organization)
            .filter(date__gte=start, date__lt=today)
            .exclude(color="")
            .values("date", "color")
            .annotate(n=Count("id"))
            .order_by()
        )
        by_date: dict[str, dict[str, int]] = {}
        for r in rows:
            by_date.setdefault(r["date"].isoformat(), dict.fromkeys(COLORS, 0))[r["color"]] = r["n"]
        past = by_date
        cache.set(key, past, 3600)
    now = (
        HealthScore.objects.for_org(organization)
        .filter(account__churned_at__isnull=True)
        .aggregate(**{c: Count("id", filter=Q(computed_color=c)) for c in COLORS})
    )
    points = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        counts = now if day == today else past.get(day.isoformat())
        if counts is None:
            continue
        points.append({"date": day, **{c: counts.get(c, 0) or 0 for c in COLORS}})
    return points
