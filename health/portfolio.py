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

Query budget, whatever the number of accounts: segments (1), one grouped scan of the accounts for the
overall, segment, owner, today's-trend and capacity figures (1), the owners' names (1); the page adds
the trend's past days (0 when cached, else 1), the biggest movers (2) and the capacity targets (1).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Account

from .filtersets import local_today
from .models import HealthColor, HealthScore, HealthSnapshot

__all__ = [
    "COLORS",
    "TREND_DAYS",
    "biggest_movers",
    "color_trend",
    "invalidate_trend",
    "portfolio_metrics",
    "portfolio_rows",
]

COLORS = (HealthColor.RED.value, HealthColor.YELLOW.value, HealthColor.GREEN.value)
BUCKETS = (*COLORS, "unscored")
TREND_DAYS = 90
ZERO = Decimal("0.00")


def _empty() -> dict[str, Any]:
    return {"counts": dict.fromkeys(BUCKETS, 0), "arr_by_color": dict.fromkeys(BUCKETS, ZERO)}


def _add(split: dict[str, Any], bucket: str, n: int, arr: Decimal) -> None:
    split["counts"][bucket] += n
    split["arr_by_color"][bucket] += arr


def _finish(split: dict[str, Any]) -> dict[str, Any]:
    counts, arr = split["counts"], split["arr_by_color"]
    return {
        **split,
        "accounts": sum(counts.values()),
        "arr": sum(arr.values(), ZERO),
        "arr_at_risk": arr["red"],
        "unscored": counts["unscored"],
    }


def live_accounts(organization: Any) -> Any:
    return Account.objects.for_org(organization).filter(churned_at__isnull=True)


def portfolio_rows(organization: Any) -> dict[str, Any]:
    """Overall, per segment and per owner colour splits (counts and ARR as ``Decimal``), the computed-colour
    counts of today (the trend's last point) and the per-owner, per-touch-model counts capacity needs.

    Three queries: the segments; **one scan** of the live accounts grouped by owner, touch model,
    effective and computed colour, with a count and an ARR sum per segment (its rules compiled to
    SQL, as ``FILTER (WHERE …)``); the owners' names. The groups are few (owners × touch models ×
    colours) and are summed here, so it is one pass over the accounts whatever the number of
    segments or owners.
    """
    from accounts.models import Segment
    from accounts.segments import SegmentRuleError, compile_rules, rule_problems

    segments = list(Segment.objects.for_org(organization).order_by("position", "name"))
    aggregates: dict[str, Any] = {"total_n": Count("id"), "total_arr": Sum("arr")}
    valid: dict[int, bool] = {}
    for segment in segments:
        try:
            condition = compile_rules(segment.rules, organization=organization)
        except SegmentRuleError:
            valid[segment.pk] = False  # shown as invalid, never silently as "everyone"
            continue
        valid[segment.pk] = True
        aggregates[f"seg_{segment.pk}_n"] = Count("id", filter=condition)
        aggregates[f"seg_{segment.pk}_arr"] = Sum("arr", filter=condition)
    groups = (
        live_accounts(organization)
        .annotate(
            effective=Coalesce(F("health__color"), Value("")), computed=Coalesce(F("health__computed_color"), Value(""))
        )
        .values("owner_id", "touch_model", "effective", "computed")
        .annotate(**aggregates)
        .order_by()
    )
    overall = _empty()
    by_segment = {segment.pk: _empty() for segment in segments}
    owners: dict[Any, dict[str, Any]] = {}
    capacity: dict[tuple, dict[str, Any]] = {}
    computed_today = dict.fromkeys(COLORS, 0)
    for row in groups:
        n, arr = row["total_n"], row["total_arr"] or ZERO
        bucket = row["effective"] or "unscored"
        _add(overall, bucket, n, arr)
        for segment in segments:
            if valid[segment.pk] and row[f"seg_{segment.pk}_n"]:
                _add(by_segment[segment.pk], bucket, row[f"seg_{segment.pk}_n"], row[f"seg_{segment.pk}_arr"] or ZERO)
        _add(owners.setdefault(row["owner_id"], _empty()), bucket, n, arr)
        if row["computed"] in computed_today:
            computed_today[row["computed"]] += n
        key = (row["owner_id"], row["touch_model"])
        entry = capacity.setdefault(key, {"owner_id": key[0], "touch_model": key[1], "n": 0, "arr": ZERO})
        entry["n"] += n
        entry["arr"] += arr
    users = {
        u["pk"]: u
        for u in get_user_model()
        .objects.filter(pk__in=[o for o in owners if o is not None])
        .values("pk", "email", "first_name", "last_name")
    }
    capacity_rows = []
    for (owner_id, _touch), entry in capacity.items():
        user = users.get(owner_id, {})
        capacity_rows.append({**entry, "owner__email": user.get("email"), "owner__first_name": user.get("first_name"),
                              "owner__last_name": user.get("last_name")})  # fmt: skip
    by_owner = []
    for owner_id, split in owners.items():
        user = users.get(owner_id, {})
        name = f"{user.get('first_name') or ''} {user.get('last_name') or ''}".strip()
        by_owner.append({"owner": owner_id, "name": name or user.get("email"), **_finish(split)})
    by_owner.sort(key=lambda e: (e["owner"] is None, -e["arr_by_color"]["red"], (e["name"] or "").lower()))
    return {
        "overall": _finish(overall),
        "by_segment": [
            {
                "segment": s.pk,
                "name": s.name,
                "valid": valid[s.pk],
                "problems": [] if valid[s.pk] else rule_problems(s.rules),
                **_finish(by_segment[s.pk]),
            }
            for s in segments
        ],
        "by_owner": by_owner,
        "computed_today": computed_today,
        "capacity_rows": capacity_rows,
    }


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
    """The accounts whose score dropped most over 7 days (``delta_7`` most negative). Two small queries:
    the ids first, sorted on the score table alone (a top-N sort, no join), then those rows with their
    account and owner. Churned accounts have no score, hence no ``delta_7``; they are excluded anyway."""
    ids = list(
        HealthScore.objects.for_org(organization)
        .filter(delta_7__lt=0)
        .order_by("delta_7", "id")
        .values_list("id", flat=True)[: limit * 2]
    )
    rows = (
        HealthScore.objects.for_org(organization)
        .filter(pk__in=ids, account__churned_at__isnull=True)
        .select_related("account__owner")
    )
    return sorted(rows, key=lambda h: (h.delta_7, h.account.name))[:limit]


TREND_DAY_TTL = 100 * 24 * 3600  # a cached day leaves the 90-day window before it expires


def _trend_generation(organization_id: int) -> int:
    return cache.get(f"health:trend-gen:{organization_id}", 0)


def invalidate_trend(organization: Any) -> None:
    """Forget the cached past days of the organization's colour trend. Call it after rewriting snapshots
    of past days (a backfill, ``recompute_health`` with an ``as_of`` before today)."""
    organization_id = getattr(organization, "pk", organization)
    key = f"health:trend-gen:{organization_id}"
    cache.set(key, _trend_generation(organization_id) + 1, None)


def color_trend(
    organization: Any,
    *,
    today: dt.date | None = None,
    days: int = TREND_DAYS,
    today_counts: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Accounts per computed colour and day over the last ``days`` days, from the snapshots, aggregated in
    SQL (``GROUP BY date, color``).

    A past day does not change once it has ended (recomputes write today's snapshot), so each past day
    is cached on its own (one cache read for all of them): the first view aggregates the window once,
    later views only the days not cached yet (usually none, or yesterday). :func:`invalidate_trend`
    drops them after a backfill. Today's point is counted live from the latest scores (or taken from
    ``today_counts``, the computed colours :func:`portfolio_rows` already counted). At most two queries."""
    # The organization's own "today" (the day the engine's snapshots are dated by): a day is past only
    # once it has ended there.
    today = today or local_today(organization)
    start = today - dt.timedelta(days=days - 1)
    generation = _trend_generation(organization.pk)
    keys = {
        start
        + dt.timedelta(days=offset): f"health:trend:{organization.pk}:{generation}:{start + dt.timedelta(days=offset)}"
        for offset in range(days - 1)
    }
    cached = cache.get_many(list(keys.values()))
    past: dict[str, dict[str, int]] = {day.isoformat(): cached[key] for day, key in keys.items() if key in cached}
    missing = [day for day, key in keys.items() if key not in cached]
    if missing:
        rows = (
            HealthSnapshot.objects.for_org(organization)
            .filter(date__gte=min(missing), date__lte=max(missing))
            .exclude(color="")
            .values("date", "color")
            .annotate(n=Count("id"))
            .order_by()
        )
        fresh: dict[str, dict[str, int]] = {day.isoformat(): {} for day in missing}
        for r in rows:
            if r["date"].isoformat() in fresh:
                fresh[r["date"].isoformat()][r["color"]] = r["n"]
        cache.set_many({keys[day]: fresh[day.isoformat()] for day in missing}, TREND_DAY_TTL)
        past.update(fresh)
    now = today_counts
    if now is None:
        now = (
            HealthScore.objects.for_org(organization)
            .filter(account__churned_at__isnull=True)
            .aggregate(**{c: Count("id", filter=Q(computed_color=c)) for c in COLORS})
        )
    points = []
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        counts = now if day == today else past.get(day.isoformat())
        if not counts:  # no snapshot that day
            continue
        points.append({"date": day, **{c: counts.get(c, 0) or 0 for c in COLORS}})
    return points
