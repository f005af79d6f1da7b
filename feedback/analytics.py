"""Survey scores exactly as spec §6 defines them, over responses of any source (imported, API, answered).

* **NPS** = % promoters (9–10) − % detractors (0–6) of the ``nps`` responses, −100…100.
* **CSAT** = % of the ``csat`` responses scoring 4–5 (``satisfied``).
* **CES** = % of the ``ces`` responses scoring ≥ 5 (``easy``).

Each is rounded half away from zero to one decimal (``33.3``), and is ``None`` when there is no response.
A period ``[start, end]`` holds the responses whose ``responded_at`` falls on a day from ``start`` to
``end``, both inclusive, in the organization's time zone (UTC by default).

Groups (spec §8, "as in the retention API"): ``segment`` — every segment the response's account matches
*now* (compiled rules, segments may overlap), in segment order, then accounts in no segment under
``None``; ``touch_model``, ``industry``, ``region``, ``owner`` (the CSM's e-mail: scores per CSM) — the
account's current attribute, ``None`` when empty, sorted with ``None`` last; ``account`` — the account's
``external_id`` (its id as a string when it has none). Groups without a response are left out.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from accounts.models import Account, Organization, Segment

from .models import SurveyKind, SurveyResponse

__all__ = [
    "GROUP_BY_CHOICES",
    "METRICS",
    "distribution",
    "figures",
    "month_starts",
    "monthly_trend",
    "percent",
    "period_bounds",
]

GROUP_BY_CHOICES = ("segment", "touch_model", "industry", "region", "owner", "account")
ATTRIBUTES = {"touch_model": "touch_model", "industry": "industry", "region": "region", "owner": "owner__email"}
ONE_PLACE = Decimal("0.1")


def _pct(numerator: int, total: int) -> float | None:
    """``numerator / total`` as a percentage, 1 place, half-up; ``None`` when ``total`` is 0. A negative
    figure that rounds to zero is ``0.0``, never ``-0.0`` (shown as "-0.0" and serialised as such)."""
    if not total:
        return None
    value = float((Decimal(numerator) * 100 / Decimal(total)).quantize(ONE_PLACE, rounding=ROUND_HALF_UP))
    return value if value else 0.0


def percent(numerator: int, total: int) -> float | None:
    """The public name of :func:`_pct`: e.g. a response rate in %, 1 place, half-up (``None`` if no total)."""
    return _pct(numerator, total)


def nps_figures(scores: list[int]) -> dict[str, Any]:
    promoters = sum(1 for s in scores if s >= 9)
    detractors = sum(1 for s in scores if s <= 6)
    return {
        "nps": _pct(promoters - detractors, len(scores)),
        "responses": len(scores),
        "promoters": promoters,
        "passives": len(scores) - promoters - detractors,
        "detractors": detractors,
    }


def csat_figures(scores: list[int]) -> dict[str, Any]:
    satisfied = sum(1 for s in scores if s >= 4)
    return {"csat": _pct(satisfied, len(scores)), "responses": len(scores), "satisfied": satisfied}


def ces_figures(scores: list[int]) -> dict[str, Any]:
    easy = sum(1 for s in scores if s >= 5)
    return {"ces": _pct(easy, len(scores)), "responses": len(scores), "easy": easy}


METRICS = {SurveyKind.NPS: nps_figures, SurveyKind.CSAT: csat_figures, SurveyKind.CES: ces_figures}


def _org(org: Organization | int) -> Organization:
    return org if isinstance(org, Organization) else Organization.objects.get(pk=org)


def period_bounds(org: Organization, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[start 00:00, end 23:59:59.999999]`` in the organization's time zone, both ends inclusive (the
    last microsecond, not the next midnight, so that ``end`` may be the last representable day)."""
    tz = ZoneInfo(org.time_zone or "UTC")
    return (
        _in_utc(dt.datetime.combine(start, dt.time(0), tzinfo=tz), dt.datetime.min),
        _in_utc(dt.datetime.combine(end, dt.time.max, tzinfo=tz), dt.datetime.max),
    )


def _in_utc(moment: dt.datetime, limit: dt.datetime) -> dt.datetime:
    """``moment`` in UTC; at the ends of the calendar (year 1, year 9999) the nearest representable instant."""
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:
        return limit.replace(tzinfo=dt.UTC)


def _rows(org: Organization, kind: str, start: dt.date, end: dt.date, **filters: Any) -> list[tuple[int, int]]:
    since, until = period_bounds(org, start, end)
    return list(
        SurveyResponse.objects.for_org(org.pk)
        .filter(kind=kind, responded_at__gte=since, responded_at__lte=until, **filters)
        .order_by()
        .values_list("account_id", "score")
    )


def _segment_keys(org: Organization, account_ids: set[int]) -> list[tuple[str | None, set[int]]]:
    from accounts.segments import compile_or_none

    groups: list[tuple[str | None, set[int]]] = []
    seen: set[int] = set()
    for segment in Segment.objects.for_org(org.pk).order_by("position", "name"):
        condition = compile_or_none(segment.rules)
        if condition is None:
            continue  # an invalid rule set matches nobody rather than breaking the report
        members = set(
            Account.objects.for_org(org.pk).filter(condition, pk__in=account_ids).values_list("id", flat=True)
        )
        if members:
            groups.append((segment.name, members))
            seen |= members
    rest = account_ids - seen
    if rest:
        groups.append((None, rest))
    return groups


def _attribute_keys(org: Organization, account_ids: set[int], group_by: str) -> list[tuple[str | None, set[int]]]:
    rows = Account.objects.for_org(org.pk).filter(pk__in=account_ids)
    if group_by == "account":
        values = ((pk, ext or str(pk)) for pk, ext in rows.values_list("id", "external_id"))
    else:
        values = ((pk, value or None) for pk, value in rows.values_list("id", ATTRIBUTES[group_by]))
    by_key: dict[str | None, set[int]] = defaultdict(set)
    for pk, key in values:
        by_key[None if key is None else str(key)].add(pk)
    return sorted(by_key.items(), key=lambda item: (item[0] is None, item[0] or ""))


def figures(
    org: Organization | int, kind: str, start: dt.date, end: dt.date, *, group_by: str | None = None,
    **filters: Any,
) -> dict[str, Any]:  # fmt: skip
    """The figures of ``kind`` over ``[start, end]`` (see the module docstring), with ``groups``.

    ``filters`` narrow the responses (``account_id=…``, ``account__owner_id=…``, ``account_id__in=…``)."""
    if group_by is not None and group_by not in GROUP_BY_CHOICES:
        raise ValueError(f"unknown group_by {group_by!r}")
    if end < start:
        raise ValueError("end is before start")
    organization = _org(org)
    compute = METRICS[kind]
    rows = _rows(organization, kind, start, end, **filters)
    result = compute([score for _account, score in rows])
    groups: list[dict[str, Any]] = []
    if group_by is not None and rows:
        accounts = {account for account, _score in rows}
        keyed = (
            _segment_keys(organization, accounts)
            if group_by == "segment"
            else _attribute_keys(organization, accounts, group_by)
        )
        for key, members in keyed:
            scores = [score for account, score in rows if account in members]
            if scores:
                groups.append({"key": key, **compute(scores)})
    result["groups"] = groups
    return result


def month_starts(months: int, today: dt.date) -> list[dt.date]:
    """The first days of the last ``months`` calendar months ending with ``today``'s, oldest first."""
    first = today.replace(day=1)
    starts = []
    for _ in range(months):
        starts.append(first)
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return list(reversed(starts))


def monthly_trend(org: Organization | int, months: int, today: dt.date, **filters: Any) -> list[dict[str, Any]]:
    """The last ``months`` calendar months ending with ``today``'s (organization time zone): per month, the
    NPS, CSAT and CES figures exactly as :func:`figures` computes them for that month. One query."""
    organization = _org(org)
    tz = ZoneInfo(organization.time_zone or "UTC")
    starts = month_starts(months, today)
    since, until = period_bounds(organization, starts[0], today)
    buckets: dict[tuple[str, str], list[int]] = defaultdict(list)
    rows = (
        SurveyResponse.objects.for_org(organization.pk)
        .filter(responded_at__gte=since, responded_at__lte=until, **filters)
        .order_by()
        .values_list("kind", "responded_at", "score")
    )
    for kind, moment, score in rows:
        buckets[(kind, moment.astimezone(tz).strftime("%Y-%m"))].append(score)
    out = []
    for start in starts:
        month = start.strftime("%Y-%m")
        row: dict[str, Any] = {"month": month, "label": start.strftime("%b %Y")}
        for kind, compute in METRICS.items():
            row[str(kind)] = compute(buckets.get((str(kind), month), []))
        out.append(row)
    return out


def distribution(org: Organization | int, kind: str, start: dt.date, end: dt.date, **filters: Any) -> list[dict]:
    """Responses per score of ``kind`` over ``[start, end]``, every score of the range listed."""
    from .models import SCORE_RANGES, response_category

    organization = _org(org)
    counts: dict[int, int] = defaultdict(int)
    for _account, score in _rows(organization, kind, start, end, **filters):
        counts[score] += 1
    low, high = SCORE_RANGES[kind]
    return [{"score": s, "count": counts[s], "category": response_category(kind, s)} for s in range(low, high + 1)]
