"""The evidence behind a health score, in the customer's terms (Account 360, renewal page).

A component's stored signal is a bare number ("adoption 0.04", "usage trend −34"). A CSM needs the
facts behind it, with their unit: "12 of 300 licensed users active in 30 days", "events −34 % vs the
previous 30 days", "NPS −100 from 2 responses", "12 tickets in 90 days, 1 open P1", "$12,400 overdue
45 days". :func:`evidence` reads those facts for **one account**, as of a day, with exactly the
windows and rules of :mod:`health.analytics` (the engine's signal definitions, ``docs/metrics.md``),
so that the sentence and the score always describe the same thing. Each fact comes with a link to the
rows behind it: a small list page of the account's tickets, invoices, usage metrics or survey
responses, or the contacts, timeline and pulse sections of Account 360.

Cost: one small query per source the account's scorecard reads (at most eight, each narrowed to the
account by an ``(organization, account, …)`` index), whatever the history holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Max, Min, Q, Sum
from django.urls import reverse

from accounts.choices import KEY_CONTACT_ROLES, NON_TOUCH_ACTIVITY_TYPES, ActivityType, ContactRole
from accounts.models import Account, Activity, Contact, Contract
from accounts.templatetags.retain_ui import money
from feedback.models import SurveyKind, SurveyResponse

from .analytics import DEPARTURE_WINDOW, NPS_WINDOW, PULSE_STALE_DAYS, SUPPORT_WINDOW, USAGE_LOOKBACK, USAGE_WINDOW
from .models import CsmPulse, Invoice, Ticket, TicketPriority, TicketStatus, UsageMetric

__all__ = ["Evidence", "ROW_KINDS", "evidence", "rows_url"]

#: The list pages of the rows behind a signal (``health.views.account_rows``).
ROW_KINDS = ("tickets", "invoices", "usage", "responses")


@dataclass(frozen=True)
class Evidence:
    """One component's signal in words: ``text`` (with its unit), ``missing`` when there is no data, and
    ``url``/``link_label`` pointing at the rows it was computed from."""

    text: str
    url: str
    link_label: str
    missing: bool = False


def rows_url(org_slug: str, account_id: int, rows: str, **params: str) -> str:
    """The list page of the account's ``rows`` (``tickets``, ``invoices``, ``usage``, ``responses``)."""
    url = reverse("account-rows", args=[org_slug, account_id, rows])
    query = "&".join(f"{k}={v}" for k, v in params.items() if v)
    return f"{url}?{query}" if query else url


def _num(value: Any, places: int = 0) -> str:
    """``1234.0`` → ``1,234``; a negative number with a real minus sign."""
    number = float(value)
    text = f"{abs(number):,.{places}f}"
    return ("−" if number < 0 and text.strip("0.,") else "") + text


def _signed(value: float, places: int = 0) -> str:
    text = _num(value, places)
    return text if text.startswith("−") or float(value) == 0 else f"+{text}"


def _plural(n: int | float, word: str, plural: str | None = None) -> str:
    return f"{_num(n)} {word if n == 1 else (plural or word + 's')}"


def _days_ago(days: int) -> str:
    return "today" if days == 0 else ("yesterday" if days == 1 else f"{_num(days)} days ago")


class _Reader:
    """The facts of one account as of one day; each method is one query, run only when asked for."""

    def __init__(self, account: Account, as_of: date) -> None:
        self.account = account
        self.org = account.organization
        self.as_of = as_of
        self.tz = ZoneInfo(self.org.time_zone or "UTC")
        self.end = datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=self.tz)
        self.scope = {"organization_id": account.organization_id, "account_id": account.pk}

    def since(self, days: int) -> date:
        return self.as_of - timedelta(days=days - 1)

    def since_instant(self, days: int) -> datetime:
        return datetime.combine(self.since(days), time(0), tzinfo=self.tz)

    def url(self, rows: str, **params: str) -> str:
        return rows_url(self.org.slug, self.account.pk, rows, **params)

    def anchor(self, fragment: str) -> str:
        return reverse("account-detail", args=[self.org.slug, self.account.pk]) + f"#{fragment}"

    # --- usage: active users, events, any metric (one query for all of them) ---------------------------
    _usage: dict[str, Any] | None = None

    def usage(self, metrics: Iterable[str] = ()) -> dict[str, Any]:
        if self._usage is None:
            recent = Q(date__gte=self.since(USAGE_WINDOW))
            extra = sorted({m for m in metrics if m})
            aggregates: dict[str, Any] = {
                "au30": Max("value", filter=recent & Q(metric="active_users")),
                "ev_cur": Sum("value", filter=recent & Q(metric="events")),
                "ev_prev": Sum("value", filter=~recent & Q(metric="events")),
                "tracked": Count("id", filter=Q(metric__in=("active_users", "events"))),
            }
            for i, metric in enumerate(extra):
                aggregates[f"m{i}"] = Sum("value", filter=recent & Q(metric=metric))
            row = UsageMetric.all_orgs.filter(
                **self.scope, date__gte=self.since(USAGE_LOOKBACK), date__lte=self.as_of,
                metric__in=["active_users", "events", *extra],
            ).aggregate(**aggregates)  # fmt: skip
            row["metrics"] = {m: row.get(f"m{i}") for i, m in enumerate(extra)}
            self._usage = row
        return self._usage

    def seats(self) -> int | None:
        total = (
            Contract.all_orgs.filter(**self.scope, start_date__lte=self.as_of, end_date__gte=self.as_of)
            .exclude(status="cancelled")
            .aggregate(seats=Sum("seats"))["seats"]
        )
        return int(total) if total else None


def _adoption(r: _Reader, metrics: Iterable[str]) -> Evidence:
    usage, seats = r.usage(metrics), r.seats()
    url, label = r.url("usage", metric="active_users"), "Active users per day"
    if not usage["tracked"]:
        return Evidence(f"usage not tracked: no active users or events in the last {USAGE_LOOKBACK} days", url,
                        label, missing=True)  # fmt: skip
    if not seats:
        return Evidence("no licensed seats on a contract running today", url, label, missing=True)
    active = int(usage["au30"] or 0)
    share = active / seats * 100
    return Evidence(
        f"{_num(active)} of {_plural(seats, 'licensed user')} active in {USAGE_WINDOW} days "
        f"({_num(share, 1 if share < 10 else 0)} %, busiest day)",
        url,
        label,
    )


def _usage_trend(r: _Reader, metrics: Iterable[str]) -> Evidence:
    usage = r.usage(metrics)
    url, label = r.url("usage", metric="events"), "Events per day"
    current, previous = float(usage["ev_cur"] or 0), float(usage["ev_prev"] or 0)
    if previous <= 0:
        return Evidence(f"no events in the {USAGE_WINDOW} days before the last {USAGE_WINDOW} (no baseline); "
                        f"{_num(current)} in the last {USAGE_WINDOW}", url, label, missing=True)  # fmt: skip
    change = (current - previous) / previous * 100
    return Evidence(
        f"events {_signed(change)} % vs the previous {USAGE_WINDOW} days ({_num(current)} vs {_num(previous)})",
        url,
        label,
    )


def _support(r: _Reader) -> Evidence:
    open_at_as_of = Q(resolved_at__gte=r.end) | Q(
        resolved_at__isnull=True, status__in=[TicketStatus.OPEN, TicketStatus.PENDING]
    )
    row = Ticket.all_orgs.filter(**r.scope, opened_at__lt=r.end).aggregate(
        ever=Count("id"),
        recent=Count("id", filter=Q(opened_at__gte=r.since_instant(SUPPORT_WINDOW))),
        open_p1=Count("id", filter=Q(priority=TicketPriority.P1) & open_at_as_of),
    )
    url, label = r.url("tickets"), "Tickets"
    if not row["ever"]:
        return Evidence("no ticket ever recorded (no helpdesk data)", url, label, missing=True)
    return Evidence(
        f"{_plural(row['recent'], 'ticket')} in {SUPPORT_WINDOW} days, {_num(row['open_p1'])} open P1", url, label
    )


def _nps(r: _Reader) -> Evidence:
    row = SurveyResponse.all_orgs.filter(
        **r.scope, kind=SurveyKind.NPS, responded_at__gte=r.since_instant(NPS_WINDOW), responded_at__lt=r.end
    ).aggregate(
        n=Count("id"), promoters=Count("id", filter=Q(score__gte=9)), detractors=Count("id", filter=Q(score__lte=6))
    )
    url, label = r.url("responses", kind="nps"), "Survey responses"
    if not row["n"]:
        return Evidence(f"no NPS response in {NPS_WINDOW} days", url, label, missing=True)
    nps = (row["promoters"] - row["detractors"]) / row["n"] * 100
    detail = f"{_num(row['promoters'])} promoter{'s' if row['promoters'] != 1 else ''}, " \
             f"{_num(row['detractors'])} detractor{'s' if row['detractors'] != 1 else ''}"  # fmt: skip
    return Evidence(f"NPS {_num(nps)} from {_plural(row['n'], 'response')} in {NPS_WINDOW} days ({detail})", url, label)


def _engagement(r: _Reader) -> Evidence:
    url, label = r.anchor("timeline"), "Timeline"
    cadence = (r.org.touch_cadence_days or {}).get(r.account.touch_model)
    last = (
        Activity.all_orgs.filter(**r.scope, occurred_at__lt=r.end)
        .exclude(type__in=list(NON_TOUCH_ACTIVITY_TYPES))
        .order_by("-occurred_at")
        .values_list("occurred_at", "type")
        .first()
    )
    if last is not None:
        days = (r.as_of - last[0].astimezone(r.tz).date()).days
        kind = ActivityType(last[1]).label.lower() if last[1] in ActivityType.values else last[1]
        fact = f"last customer touch {_days_ago(days)} ({kind}, {last[0].astimezone(r.tz):%b %-d})"
    elif r.account.customer_since and r.account.customer_since <= r.as_of:
        days = (r.as_of - r.account.customer_since).days
        fact = f"never touched; customer for {_plural(days, 'day')}"
    else:
        return Evidence("no customer touch and no customer-since date", url, label, missing=True)
    if not cadence:
        return Evidence(f"{fact}; {r.account.get_touch_model_display().lower()} has no touch cadence", url, label,
                        missing=True)  # fmt: skip
    return Evidence(f"{fact}: {_num(days / cadence, 1)}× the {cadence}-day cadence", url, label)


def _relationship(r: _Reader) -> Evidence:
    url, label = r.anchor("contacts"), "Contacts"
    contacts = list(Contact.all_orgs.filter(**r.scope).values_list("name", "roles", "is_active", "departed_at"))
    if not contacts:
        return Evidence("no contacts recorded", url, label, missing=True)

    def active(departed: date | None, is_active: bool) -> bool:
        return (departed is not None and departed > r.as_of) or (departed is None and is_active)

    def holders(role: str) -> list[str]:
        return [
            n for n, roles, is_active, departed in contacts if role in (roles or []) and active(departed, is_active)
        ]

    since = r.since(DEPARTURE_WINDOW)
    key_roles = {role.value for role in KEY_CONTACT_ROLES}
    departed = [
        f"{n} ({departed:%b %-d})"
        for n, roles, _a, departed in contacts
        if departed is not None and since <= departed <= r.as_of and key_roles & set(roles or [])
    ]
    champions, sponsors = holders(ContactRole.CHAMPION), holders(ContactRole.EXECUTIVE_SPONSOR)
    parts = [
        f"champion {', '.join(champions)}" if champions else "no active champion",
        f"executive sponsor {', '.join(sponsors)}" if sponsors else "no active executive sponsor",
    ]
    if departed:
        parts.append(f"key contact departed in {DEPARTURE_WINDOW} days: {', '.join(departed)}")
    return Evidence("; ".join(parts), url, label)


def _financial(r: _Reader) -> Evidence:
    unpaid_overdue = Q(due_date__lt=r.as_of) & (Q(paid_at__isnull=True) | Q(paid_at__gt=r.as_of))
    row = Invoice.all_orgs.filter(**r.scope, due_date__lte=r.as_of).aggregate(
        n=Count("id"),
        overdue=Count("id", filter=unpaid_overdue),
        amount=Sum("amount", filter=unpaid_overdue),
        oldest=Min("due_date", filter=unpaid_overdue),
    )
    url, label = r.url("invoices"), "Invoices"
    if not row["n"]:
        return Evidence("no invoice due yet", url, label, missing=True)
    if not row["overdue"]:
        return Evidence(f"nothing overdue: {_plural(row['n'], 'invoice')} due so far, all paid", url, label)
    days = (r.as_of - row["oldest"]).days
    amount = money(row["amount"] or Decimal(0), r.org.currency)
    return Evidence(
        f"{amount} overdue {_plural(days, 'day')} ({_plural(row['overdue'], 'unpaid invoice')})", url, label
    )


def _pulse(r: _Reader) -> Evidence:
    url, label = r.anchor("pulses"), "CSM pulses"
    pulse = (
        CsmPulse.all_orgs.filter(
            **r.scope, created_at__gte=r.end - timedelta(days=PULSE_STALE_DAYS), created_at__lt=r.end
        )
        .select_related("author")
        .order_by("-created_at", "-id")
        .first()
    )
    if pulse is None:
        return Evidence(f"no CSM pulse in {PULSE_STALE_DAYS} days (older ones are stale)", url, label, missing=True)
    who = (pulse.author.get_full_name() or pulse.author.email) if pulse.author else "someone"
    return Evidence(f"{pulse.color} pulse by {who} on {pulse.created_at.astimezone(r.tz):%b %-d}", url, label)


def _metric(r: _Reader, metric: str, metrics: Iterable[str]) -> Evidence:
    usage = r.usage(metrics)
    url, label = r.url("usage", metric=metric), f"Daily {metric}"
    value = usage["metrics"].get(metric)
    if value is None and not usage["tracked"]:
        return Evidence(f"no {metric} recorded in {USAGE_WINDOW} days", url, label, missing=True)
    return Evidence(f"{_num(value or 0)} {metric} in {USAGE_WINDOW} days", url, label)


def evidence(account: Account, components: Iterable[dict[str, Any]], *, as_of: date) -> dict[str, Evidence]:
    """Each component's signal in words, keyed by component key (``components`` as :func:`explain` gives
    them, with ``key`` and ``signal``). Sources that no component reads are not queried."""
    reader = _Reader(account, as_of)
    components = [c for c in components if c.get("key")]
    metrics = [c["signal"].split(":", 1)[1] for c in components if str(c.get("signal") or "").startswith("usage:")]
    builders = {
        "adoption": lambda: _adoption(reader, metrics),
        "usage_trend": lambda: _usage_trend(reader, metrics),
        "support": lambda: _support(reader),
        "nps": lambda: _nps(reader),
        "engagement": lambda: _engagement(reader),
        "relationship": lambda: _relationship(reader),
        "financial": lambda: _financial(reader),
        "csm_pulse": lambda: _pulse(reader),
    }
    cache: dict[str, Evidence] = {}
    out: dict[str, Evidence] = {}
    for c in components:
        signal = str(c.get("signal") or "")
        if signal not in cache:
            if signal.startswith("usage:"):
                cache[signal] = _metric(reader, signal.split(":", 1)[1], metrics)
            elif signal in builders:
                cache[signal] = builders[signal]()
            else:
                continue
        out[c["key"]] = cache[signal]
    return out
