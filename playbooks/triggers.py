"""The playbook triggers of spec §5: their parameters, validation, occurrence keys and SQL (docs/playbooks.md).

Two families:

* **Event-driven** (``events`` set): the engine's consumer of the domain-event stream
  (``playbooks.engine.on_event``) evaluates the event's account within seconds of the event. The occurrence
  key comes from the event (``event:<id>``, ``contact:<id>``, ``created``), so a redelivered event fires once.
* **Time-based** (``events`` empty): the beat job (``playbooks.engine.evaluate_organization``) evaluates every
  active playbook **set-based**: one query per playbook returns the (account, occurrence key) pairs that
  match now, minus those already recorded. Nothing here loops over accounts in Python.

Condition-based triggers (``clears=True``) also say when their condition *holds* for an account
(:meth:`TriggerSpec.holding`): the engine fires on an account where it holds and has no uncleared firing
(one firing per episode, key ``since:<day>``), and clears the firing (auto-closing its CTA) once it no
longer holds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    CharField,
    DecimalField,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat

from cs_platform.events import EVENT_NAMES

from .models_engine import TriggerKind

__all__ = ["TRIGGERS", "TriggerSpec", "nps_category", "period_key", "validate_trigger"]

#: Why a milestone stalled (``value.stalls``): past its due date, or unchanged for the project's stall window.
STALL_REASONS = ("late", "unchanged")
#: Look-back of the P1 ticket trigger: a playbook activated today does not fire for last year's tickets.
P1_LOOKBACK_DAYS = 7
#: Usage windows: the last 30 days (today included) against the 30 before.
USAGE_WINDOW_DAYS = 30
#: Active users over seats reads the highest daily active users of the last week.
SEATS_WINDOW_DAYS = 7


@dataclass(frozen=True)
class Param:
    """One trigger parameter: ``kind`` int | choice | choices | id; ``required`` unless a default is given."""

    kind: str
    default: Any = None
    low: int = 0
    high: int = 10_000
    choices: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class TriggerSpec:
    """A trigger kind: its parameters, the events it listens to (empty: time-based), whether its condition
    clears, and the SQL that finds its accounts (time-based) or says whether it still holds."""

    kind: str
    params: dict[str, Param] = field(default_factory=dict)
    events: tuple[str, ...] = ()
    clears: bool = False
    occurrence: str = ""
    #: Condition-based: ``(organization id, accounts, params, today, now)`` → the accounts where it holds now.
    #: Correlated subqueries name the organization, so they use the indexes led by ``organization_id``.
    holding: Callable[[Any, QuerySet, dict[str, Any], dt.date, dt.datetime], QuerySet] | None = None
    #: Time-based, keyed by an object (renewal, invoice, ticket, stage, period): a queryset of
    #: ``(account_id, occurrence_key)`` rows for the accounts of ``account_ids`` (a subquery).
    keyed: Callable[[Any, QuerySet, dict[str, Any], dt.date, dt.datetime], QuerySet] | None = None

    @property
    def event_driven(self) -> bool:
        return bool(self.events)

    def condition_key(self, playbook_id: int) -> str:
        """The ``condition_key`` of a CTA this trigger opens: closes itself when the condition clears."""
        return f"playbook:{playbook_id}" if self.clears else ""


def _with_params(params: dict[str, Any], spec: TriggerSpec) -> dict[str, Any]:
    """The parameters with defaults filled in (assumes :func:`validate_trigger` accepted them)."""
    return {name: params.get(name, p.default) for name, p in spec.params.items()}


# --- Condition SQL -------------------------------------------------------------------------------------


def _health_color(org: Any, accounts: QuerySet, params: dict[str, Any], today: dt.date, now: dt.datetime) -> QuerySet:
    return accounts.filter(health__color__in=params["colors"])


def _health_drop(org: Any, accounts: QuerySet, params: dict[str, Any], today: dt.date, now: dt.datetime) -> QuerySet:
    from health.models import HealthSnapshot

    before = HealthSnapshot.all_orgs.filter(
        organization_id=org,
        account_id=OuterRef("pk"),
        date=today - dt.timedelta(days=params["days"]),
        score__isnull=False,
    ).values("score")[:1]
    return accounts.annotate(_score_before=Subquery(before)).filter(
        health__score__isnull=False, health__score__lte=F("_score_before") - params["points"]
    )


def _usage_drop(org: Any, accounts: QuerySet, params: dict[str, Any], today: dt.date, now: dt.datetime) -> QuerySet:
    from health.models import UsageMetric

    # One grouped pass over the organization's 60 days of the metric (the index led by organization, metric,
    # date), not two correlated sums per account.
    recent_start = today - dt.timedelta(days=USAGE_WINDOW_DAYS - 1)
    prior_start = recent_start - dt.timedelta(days=USAGE_WINDOW_DAYS)
    zero = Value(0, output_field=DecimalField())
    keep = Value((100 - params["percent"]) / 100, output_field=DecimalField())
    dropped = (
        UsageMetric.all_orgs.filter(
            organization_id=org, metric=params["metric"], date__gte=prior_start, date__lte=today
        )
        .values("account_id")
        .annotate(
            _recent=Coalesce(Sum("value", filter=Q(date__gte=recent_start)), zero),
            _prior=Coalesce(Sum("value", filter=Q(date__lt=recent_start)), zero),
        )
        .filter(_prior__gt=0, _recent__lte=F("_prior") * keep)
        .values("account_id")
    )
    return accounts.filter(pk__in=dropped)


def _seats_over(org: Any, accounts: QuerySet, params: dict[str, Any], today: dt.date, now: dt.datetime) -> QuerySet:
    from accounts.choices import ContractStatus
    from accounts.models import Contract
    from health.models import UsageMetric

    seats = (
        Contract.all_orgs.filter(
            organization_id=org, account_id=OuterRef("account_id"), status=ContractStatus.ACTIVE, seats__isnull=False
        )
        .values("account_id")
        .annotate(total=Sum("seats"))
        .values("total")
    )
    # The week's peak per account in one grouped pass, compared with the account's licensed seats.
    over = (
        UsageMetric.all_orgs.filter(
            organization_id=org,
            metric="active_users",
            date__gt=today - dt.timedelta(days=SEATS_WINDOW_DAYS),
            date__lte=today,
        )
        .values("account_id")
        .annotate(_peak=Max("value"))
        # In HAVING only: once per account, not per row nor in the GROUP BY. No active seats: NULL, never over.
        .filter(_peak__gt=Subquery(seats))
        .values("account_id")
    )
    return accounts.filter(pk__in=over)


def _last_touch(org: Any, accounts: QuerySet) -> QuerySet:
    from accounts.choices import ActivityType
    from accounts.models import Activity

    # An internal note is not a customer touch.
    last = (
        Activity.all_orgs.filter(organization_id=org, account_id=OuterRef("pk"))
        .exclude(type=ActivityType.NOTE)
        .order_by("-occurred_at")
        .values("occurred_at")[:1]
    )
    return accounts.annotate(_last_touch=Coalesce(Subquery(last), F("created_at")))


def _no_touch(org: Any, accounts: QuerySet, params: dict[str, Any], today: dt.date, now: dt.datetime) -> QuerySet:
    return _last_touch(org, accounts).filter(_last_touch__lt=now - dt.timedelta(days=params["days"]))


def _p1_open(org: Any, accounts: QuerySet, params: dict[str, Any], today: dt.date, now: dt.datetime) -> QuerySet:
    from health.models import Ticket, TicketPriority, TicketStatus

    open_p1 = Ticket.all_orgs.filter(
        organization_id=org,
        account_id=OuterRef("pk"),
        priority=TicketPriority.P1,
        status__in=[TicketStatus.OPEN, TicketStatus.PENDING],
    )
    return accounts.filter(Exists(open_p1))


def _overdue(org: Any, accounts: QuerySet, params: dict[str, Any], today: dt.date, now: dt.datetime) -> QuerySet:
    from health.models import Invoice

    late = Invoice.all_orgs.filter(
        organization_id=org,
        account_id=OuterRef("pk"),
        paid_at__isnull=True,
        due_date__lte=today - dt.timedelta(days=params["days"]),
    )
    return accounts.filter(Exists(late))


# --- Keyed occurrences ------------------------------------------------------------------------------------


def _key(prefix: str, column: str) -> Concat:
    return Concat(Value(prefix), Cast(column, output_field=CharField()), output_field=CharField())


def _renewals_due(org: Any, ids: QuerySet, params: dict[str, Any], today: dt.date, now: dt.datetime) -> QuerySet:
    from renewals.models import Renewal

    # Due within N days and not yet past: the first evaluation on or after due − N fires it (a missed beat
    # is caught up next time), once per renewal.
    return (
        Renewal.objects.for_org(org)
        .filter(account_id__in=ids, outcome="", due_date__gte=today, due_date__lte=today + dt.timedelta(params["days"]))
        .annotate(occurrence_key=_key("renewal:", "pk"))
        .values("account_id", "occurrence_key")
    )


def _invoices_overdue(org: Any, ids: QuerySet, params: dict[str, Any], today: dt.date, now: dt.datetime) -> QuerySet:
    from health.models import Invoice

    return (
        Invoice.objects.for_org(org)
        .filter(account_id__in=ids, paid_at__isnull=True, due_date__lte=today - dt.timedelta(days=params["days"]))
        .annotate(occurrence_key=_key("invoice:", "pk"))
        .values("account_id", "occurrence_key")
    )


def _p1_tickets(org: Any, ids: QuerySet, params: dict[str, Any], today: dt.date, now: dt.datetime) -> QuerySet:
    from health.models import Ticket, TicketPriority

    return (
        Ticket.objects.for_org(org)
        .filter(
            account_id__in=ids,
            priority=TicketPriority.P1,
            opened_at__gte=now - dt.timedelta(days=P1_LOOKBACK_DAYS),
            opened_at__lte=now,
        )
        .annotate(occurrence_key=_key("ticket:", "pk"))
        .values("account_id", "occurrence_key")
    )


def _stage_unchanged(org: Any, ids: QuerySet, params: dict[str, Any], today: dt.date, now: dt.datetime) -> QuerySet:
    from .models_engine import AccountStageMark

    marks = AccountStageMark.objects.for_org(org).filter(
        account_id__in=ids, stage=F("account__lifecycle_stage"), since__lte=today - dt.timedelta(params["days"])
    )
    if params.get("stages"):
        marks = marks.filter(stage__in=params["stages"])
    key = Concat(
        Value("stage:"), F("stage"), Value(":"), Cast("since", output_field=CharField()), output_field=CharField()
    )
    return marks.annotate(occurrence_key=key).values("account_id", "occurrence_key")


def period_key(every: str, today: dt.date) -> str:
    """The schedule's period containing ``today``: ``2026-12``, ``2026-Q4`` or ``2026``."""
    if every == "month":
        return f"period:{today:%Y-%m}"
    if every == "quarter":
        return f"period:{today.year}-Q{(today.month - 1) // 3 + 1}"
    return f"period:{today.year}"


def _schedule(org: Any, ids: QuerySet, params: dict[str, Any], today: dt.date, now: dt.datetime) -> QuerySet:
    from accounts.models import Account

    return (
        Account.objects.for_org(org)
        .filter(pk__in=ids)
        .annotate(account_id=F("pk"), occurrence_key=Value(period_key(params["every"], today), CharField()))
        .values("account_id", "occurrence_key")
    )


def nps_category(score: Any) -> str:
    """NPS: 0–6 detractor, 7–8 passive, 9–10 promoter."""
    score = int(score)
    return "detractor" if score <= 6 else "passive" if score <= 8 else "promoter"


DAYS = Param("int", low=1, high=730)
TRIGGERS: dict[str, TriggerSpec] = {
    spec.kind: spec
    for spec in (
        TriggerSpec(
            TriggerKind.HEALTH_COLOR,
            {"colors": Param("choices", default=["red"], choices=("red", "yellow"))},
            events=("health.color_changed",),
            clears=True,
            holding=_health_color,
            occurrence="event:<event id> — a colour change into one of the colours; clears when the colour leaves them",
        ),
        TriggerSpec(
            TriggerKind.HEALTH_DROP,
            {"points": Param("int", low=1, high=100), "days": Param("int", low=1, high=365)},
            clears=True,
            holding=_health_drop,
            occurrence="since:<day> — score ≤ the snapshot of D days ago − N; clears when no longer so",
        ),
        TriggerSpec(
            TriggerKind.RENEWAL_DUE,
            {"days": DAYS},
            keyed=_renewals_due,
            occurrence="renewal:<renewal id> — an open renewal due within N days: once per renewal",
        ),
        TriggerSpec(
            TriggerKind.SURVEY_RESPONSE,
            {"category": Param("choice", choices=("detractor", "passive", "promoter"))},
            events=("survey.response",),
            occurrence="response:<response id>",
        ),
        TriggerSpec(
            TriggerKind.USAGE_DROP,
            {"percent": Param("int", low=1, high=100), "metric": Param("metric", default="active_users")},
            clears=True,
            holding=_usage_drop,
            occurrence="since:<day> — last 30 days ≤ (100 − X) % of the 30 before; clears when no longer so",
        ),
        TriggerSpec(
            TriggerKind.SEATS_OVER,
            {},
            clears=True,
            holding=_seats_over,
            occurrence="since:<day> — peak daily active users of the last 7 days > seats of active contracts",
        ),
        TriggerSpec(
            TriggerKind.CONTACT_DEPARTED,
            {"roles": Param("roles", default=[])},
            events=("contact.departed",),
            occurrence="contact:<contact id> — a key contact (or one of the roles given) leaves",
        ),
        TriggerSpec(
            TriggerKind.STAGE_UNCHANGED,
            {"days": DAYS, "stages": Param("texts", default=[])},
            keyed=_stage_unchanged,
            occurrence="stage:<stage>:<since> — in the same lifecycle stage for N days, once per stay",
        ),
        TriggerSpec(
            TriggerKind.INVOICE_OVERDUE,
            {"days": Param("int", low=0, high=730)},
            keyed=_invoices_overdue,
            occurrence="invoice:<invoice id> — unpaid N days after its due date, once per invoice",
        ),
        TriggerSpec(
            TriggerKind.NO_TOUCH,
            {"days": DAYS},
            clears=True,
            holding=_no_touch,
            occurrence="since:<day> — no activity (internal notes aside) in N days; clears on the next touch",
        ),
        TriggerSpec(
            TriggerKind.P1_TICKET,
            {},
            keyed=_p1_tickets,
            holding=None,
            occurrence=f"ticket:<ticket id> — a P1 ticket opened in the last {P1_LOOKBACK_DAYS} days",
        ),
        TriggerSpec(
            TriggerKind.SEGMENT_ENTERED,
            {"segment": Param("segment")},
            events=("segment.entered",),
            occurrence="event:<event id>",
        ),
        TriggerSpec(
            TriggerKind.SEGMENT_LEFT,
            {"segment": Param("segment")},
            events=("segment.left",),
            occurrence="event:<event id>",
        ),
        TriggerSpec(TriggerKind.ACCOUNT_CREATED, {}, events=("account.created",), occurrence="created"),
        TriggerSpec(
            TriggerKind.ONBOARDING_STALLED,
            {"reasons": Param("choices", default=["late", "unchanged"], choices=STALL_REASONS)},
            events=("onboarding.milestone_stalled",),
            occurrence="milestone:<milestone id>:<stalled_on> — an onboarding milestone late or unchanged for the "
            "project's stall_after_days (one of the reasons given): once per stall, again only after it changed",
        ),
        TriggerSpec(
            TriggerKind.SCHEDULE,
            {"every": Param("choice", default="quarter", choices=("month", "quarter", "year"))},
            keyed=_schedule,
            occurrence="period:<2026-12 | 2026-Q4 | 2026> — once per period",
        ),
    )
}

#: The event names the engine's consumer listens to: only those the catalogue has (segment.entered and
#: segment.left arrive with segment membership; until then those triggers never fire).
CONSUMED_EVENTS: tuple[str, ...] = tuple(
    sorted({name for spec in TRIGGERS.values() for name in spec.events if name in EVENT_NAMES})
)


def params_of(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the kind's defaults filled in."""
    return _with_params(params or {}, TRIGGERS[kind])


def validate_trigger(kind: Any, params: Any, *, organization: Any = None) -> list[tuple[str, str]]:
    """Every problem of a trigger and its parameters, as ``(path, message)``; empty when valid."""
    spec = TRIGGERS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        return [("trigger", f"Unknown trigger {kind!r}; expected one of {', '.join(TRIGGERS)}.")]
    if params in (None, ""):
        params = {}
    if not isinstance(params, dict):
        return [("trigger_params", "Expected an object.")]
    errors = [(f"trigger_params.{name}", "Unknown parameter.") for name in params if name not in spec.params]
    for name, p in spec.params.items():
        path = f"trigger_params.{name}"
        if name not in params:
            if p.default is None:
                errors.append((path, "This parameter is required."))
            continue
        errors += [(path, message) for message in _check_param(p, params[name], organization)]
    return errors


def _check_param(p: Param, value: Any, organization: Any) -> list[str]:
    if p.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return ["Expected a whole number."]
        if not p.low <= value <= p.high:
            return [f"Expected a number from {p.low} to {p.high}."]
    elif p.kind == "choice":
        if value not in p.choices:
            return [f"Expected one of {', '.join(p.choices)}."]
    elif p.kind in ("choices", "roles", "texts"):
        from accounts.choices import ContactRole

        allowed = p.choices or (tuple(ContactRole.values) if p.kind == "roles" else ())
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or len(value) > 50:
            return ["Expected a list of texts."]
        if p.kind == "choices" and not value:
            return ["Choose at least one."]
        bad = [v for v in value if allowed and v not in allowed]
        if bad:
            return [f"Unknown value(s) {', '.join(bad)}; expected {', '.join(allowed)}."]
    elif p.kind == "metric":
        if not isinstance(value, str) or not value or len(value) > 255:
            return ["Expected a usage metric name (active_users, events, sessions, …)."]
    elif p.kind == "segment":
        from accounts.models import Segment

        if isinstance(value, bool) or not isinstance(value, int):
            return ["Expected a segment id."]
        if organization is not None and not Segment.objects.for_org(organization).filter(pk=value).exists():
            return ["Unknown segment."]
    return []
