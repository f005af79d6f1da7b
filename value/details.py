"""Periods and the accounts behind a figure for the "know the details" answers (issue 15, item 5).

The figures themselves are computed in :mod:`value.analytics_details`; this module holds what the API and
the page share around them: the period a figure is asked for (a date range, or a preset: the last 12
months by default, the current or last fiscal quarter, the current or last fiscal year) and the page of
accounts behind one of a figure's drill-downs.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, NamedTuple

from dateutil.relativedelta import relativedelta

from accounts.models import Account, Organization
from renewals.analytics import fiscal_quarter

__all__ = ["PERIOD_PRESETS", "Period", "drill_accounts", "resolve_period"]

#: Preset name → label. ``last_12_months`` is the default.
PERIOD_PRESETS: dict[str, str] = {
    "last_12_months": "Last 12 months",
    "this_quarter": "This fiscal quarter",
    "last_quarter": "Last fiscal quarter",
    "this_year": "This fiscal year",
    "last_year": "Last fiscal year",
}

#: The longest period a figure is computed over (ten years): a bound on the work one request asks for.
MAX_PERIOD_DAYS = 3660


class Period(NamedTuple):
    """A closed date range ``[start, end]`` and how it was chosen (a preset name, or ``custom``)."""

    start: date
    end: date
    preset: str

    @property
    def label(self) -> str:
        return PERIOD_PRESETS.get(self.preset, "Custom period")


def resolve_period(
    org: Organization,
    *,
    preset: str | None = None,
    start: date | None = None,
    end: date | None = None,
    today: date,
) -> Period:
    """The period of a figure. Explicit ``start`` and ``end`` win (both needed); otherwise the preset
    (default ``last_12_months`` = the 365 or 366 days ending ``today``: ``[today − 1 year + 1 day, today]``).
    Fiscal quarters and years follow ``org.fiscal_year_start_month``; the current ones end ``today``.

    Raises ``ValueError`` (with the field at fault as its first argument) for an unknown preset, only one of
    start/end, an end before the start, or a period longer than ten years."""
    if start is not None or end is not None:
        if start is None or end is None:
            raise ValueError("start" if start is None else "end", "Give both start and end, or neither.")
        if end < start:
            raise ValueError("end", "The end date must not be before the start date.")
        if (end - start).days > MAX_PERIOD_DAYS:
            raise ValueError("end", "A period covers at most ten years.")
        return Period(start, end, "custom")
    name = preset or "last_12_months"
    if name == "last_12_months":
        return Period(today - relativedelta(years=1) + timedelta(days=1), today, name)
    quarter_start, quarter_end, _label = fiscal_quarter(org, today)
    if name == "this_quarter":
        return Period(quarter_start, today, name)
    if name == "last_quarter":
        previous_start, previous_end, _label = fiscal_quarter(org, quarter_start - timedelta(days=1))
        return Period(previous_start, previous_end, name)
    offset = (today.month - (org.fiscal_year_start_month or 1)) % 12
    year_start = today.replace(day=1) - relativedelta(months=offset)
    if name == "this_year":
        return Period(year_start, today, name)
    if name == "last_year":
        return Period(year_start - relativedelta(years=1), year_start - timedelta(days=1), name)
    raise ValueError("period", f"Unknown period {name!r}: choose one of {', '.join(PERIOD_PRESETS)}.")


def drill_accounts(org: Organization, account_ids: list[int], *, offset: int = 0, limit: int = 100) -> dict[str, Any]:
    """One page of the accounts behind a drill-down, in the figure's order (``account_ids`` is already
    ordered, most telling first): ``count`` and ``accounts`` (id, name, industry, region, touch model,
    owner's e-mail, current ARR). One query for the page, whatever the drill's size."""
    page_ids = account_ids[offset : offset + limit]
    rows = {
        row["id"]: row
        for row in Account.objects.for_org(org)
        .filter(id__in=page_ids)
        .values("id", "name", "industry", "region", "touch_model", "owner__email", "arr")
    }
    accounts = [
        {**rows[pk], "owner": rows[pk].pop("owner__email")} for pk in page_ids if pk in rows
    ]  # an account deleted meanwhile is skipped
    return {"count": len(account_ids), "offset": offset, "limit": limit, "accounts": accounts}
