"""Demo health signals and score history (called at the end of ``accounts.demo.seed_demo``).

Deterministic like the rest of the demo: every account draws from ``random.Random(f"{seed}:health:{n}")``
(``n`` from its external id), every past term from its own stream, and dates are relative to the seed's
"today". Each contract term has a latent risk (:mod:`accounts.demo_risk`, the same number renewals' demo
drew the term's renewal outcome from), and each signal of the term a *profile* — ``healthy`` (≈55 %),
``at_risk`` (≈30 %) or ``critical`` (≈15 %) — drawn from its own noisy copy of that risk, which drives
the signal (docs/demo.md: the loadings, and why the default scorecard is imperfect on purpose):

- for every **ended** term, the months before its renewal's backtest day (due − 90): daily
  ``active_users`` and ``events`` of the 65 days before it (a share of the term's seats, weekday/weekend
  rhythm, a trend; one day a week on big demos), tickets and NPS responses of the 180 days before it
  (recent tickets still open on that day), two CSM pulses for high- and low-touch accounts;
- quarterly invoices over every term, paid late (or not yet) by the term's financial profile;
- for the **live** term: daily usage from the account's first day (at most 90 days back),
  ``active_users``, ``events`` and ``sessions``; tickets and NPS responses since the last past window
  (at most 180 days); a recent CSM pulse; a critical relationship loses its champion (departed in the
  last 60 days); accounts tagged ``at-risk`` (most of the riskiest live terms, see accounts.demo) show
  critical signals today.

Past terms' touches and key-contact departures come from :mod:`accounts.demo` (same profiles).

Churned accounts get no new signals. Then snapshots are backfilled by running the real
``recompute_health`` as of past days (point-in-time: each day sees only the data dated before it):
up to 5,000 accounts every day of the last 30 days and weekly before that back to 90 days; bigger
demos only 30 and 7 days back (enough for Δ7/Δ30; each run over 50,000 accounts takes ~10–15 s). The
last run (today) writes the latest scores. Big demos also keep 60 days of usage and skip ``sessions``,
to keep seeding time reasonable.

On Postgres the usage rows are written as ``COPY`` lines straight from the loop (no tuples, no
``Decimal``), and the signal rows are loaded inside :func:`cs_platform.imports.copy.bulk_load` (no per-row
foreign-key triggers when allowed; references checked with one anti-join per table). Re-seeding
deletes the previous health rows with one raw ``DELETE`` per table (:func:`wipe`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Sum

from accounts.demo_risk import period_risk, signal_profiles
from accounts.models import Account, Contact, Contract, Organization
from cs_platform.imports.copy import bulk_load, copy_lines, format_row
from feedback.models import SurveyResponse

from .models import CsmPulse, HealthOverride, HealthScore, HealthSnapshot, Invoice, ProductUser, Ticket, UsageMetric
from .services import recompute_health

__all__ = ["seed_health", "wipe"]

BIG = 5000  # accounts above which the demo keeps less history
USAGE_FLUSH = 200_000
USAGE_COLUMNS = ["organization_id", "account_id", "date", "metric", "value"]
PROFILES = [("healthy", 0.55), ("at_risk", 0.30), ("critical", 0.15)]
#: profile → (active share of seats, trend over the period, tickets in 180 days, P1 share, NPS scores,
#:            pulse colours)
SHAPES: dict[str, dict[str, Any]] = {
    "healthy": {"active": (0.45, 0.85), "trend": (0.0, 0.25), "tickets": (1, 6), "p1": 0.02,
                "nps": (7, 10), "pulse": [("green", 8), ("yellow", 2)]},
    "at_risk": {"active": (0.18, 0.45), "trend": (-0.35, -0.05), "tickets": (3, 12), "p1": 0.08,
                "nps": (4, 9), "pulse": [("yellow", 6), ("green", 2), ("red", 2)]},
    "critical": {"active": (0.03, 0.2), "trend": (-0.7, -0.3), "tickets": (8, 22), "p1": 0.15,
                 "nps": (0, 7), "pulse": [("red", 7), ("yellow", 3)]},
}  # fmt: skip
#: A closed renewal is backtested as of its due date minus this many days: past windows end there.
AS_OF_LEAD = 90
PAST_USAGE_DAYS = 65  # usage days before a past window's as-of day (the trend compares 30 with 30)
LATE_ODDS = {"healthy": 0.03, "at_risk": 0.45, "critical": 0.9}  # an invoice paid late, by financial profile
LATENESS = {"healthy": (11, 40), "at_risk": (20, 100), "critical": (45, 160)}  # days late when late


def _shape(profiles: dict[str, str], signal: str) -> dict[str, Any]:
    return SHAPES[profiles[signal]]


def _insert(model: Any, columns: list[str], rows: list[Any]) -> None:
    """Insert plain tuples (``columns`` are attribute names): ``COPY`` on Postgres (no model instances:
    the big demo writes millions of usage rows), ``bulk_create`` elsewhere (small demos). On Postgres a
    row may also be an already formatted ``COPY`` line (``str``, see the usage loop)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.all_orgs.bulk_create([model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=1000)
        return
    column_of = {f.attname: f.column for f in model._meta.concrete_fields}
    lines = rows if isinstance(rows[0], str) else map(format_row, rows)
    copy_lines(connection, model._meta.db_table, [column_of[c] for c in columns], lines)


def wipe(organization: Organization) -> None:
    """Delete the organization's health rows before its accounts go (``seed_demo`` replacing a demo).

    One raw ``DELETE … WHERE organization_id`` per table (nothing references these rows): left to the
    account collector, the ~600k tickets, invoices, responses and pulses of a big demo were fetched as
    model instances and deleted with a ``post_delete`` signal each (≈ 50 s of a 50k re-seed).
    """
    for model in (UsageMetric, HealthSnapshot, HealthScore, HealthOverride, Ticket, Invoice, CsmPulse, SurveyResponse):
        model.all_orgs.filter(organization_id=organization.pk)._raw_delete(model.all_orgs.db)
    # Product users (ingestion's records) outlive a re-seed; their read-only link to a contact does not,
    # because the contacts are then deleted without the collector.
    ProductUser.all_orgs.filter(organization_id=organization.pk, contact__isnull=False).update(contact=None)


def _at(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(rng.randint(8, 18), rng.choice((0, 15, 30, 45))), tzinfo=UTC)


def _usage(usage: list[Any], as_lines: bool, prefix: str, ids: tuple[int, int], day: date, users: int, events: int,
           sessions: int | None) -> None:  # fmt: skip
    """One day's usage rows: ``COPY`` lines on Postgres (the hot loop of big demos: no tuples or
    ``Decimal``), tuples elsewhere; ``sessions`` only when given."""
    if as_lines:
        text = day.isoformat()
        usage.append(f"{prefix}{text}\tactive_users\t{users}\n")
        usage.append(f"{prefix}{text}\tevents\t{events}\n")
        if sessions is not None:
            usage.append(f"{prefix}{text}\tsessions\t{sessions}\n")
        return
    org_id, account_id = ids
    usage.append((org_id, account_id, day, "active_users", Decimal(users)))
    usage.append((org_id, account_id, day, "events", Decimal(events)))
    if sessions is not None:
        usage.append((org_id, account_id, day, "sessions", Decimal(sessions)))


def _tickets(out, rng, org_id, account_id, key, profiles, as_of, floor, *, live: bool) -> None:
    """Tickets of the 180 days up to ``as_of`` by the support profile; recent ones still open at ``as_of``
    (today: no resolution yet; a past window: resolved days after it)."""
    shape = _shape(profiles, "support")
    for k in range(rng.randint(*shape["tickets"])):
        opened = as_of - timedelta(days=rng.randint(0, 179))
        if floor and opened < floor:
            continue
        still_open = (as_of - opened).days <= 14 and rng.random() < 0.5
        priority = "P1" if rng.random() < shape["p1"] else rng.choice(["P2", "P3", "P3", "P4"])
        if still_open and live:
            resolved = None
        elif still_open:
            resolved = _at(as_of + timedelta(days=rng.randint(1, 20)), rng)
        else:
            resolved = _at(min(as_of, opened + timedelta(days=rng.randint(0, 6))), rng)
        status = "open" if resolved is None else "solved"
        out.append((org_id, account_id, f"DEMO-TK-{key}-{k + 1}", _at(opened, rng), priority, status, resolved, ""))


def _responses(out, rng, org_id, account_id, key, profiles, as_of, touch, floor) -> None:
    """NPS answers of the 180 days up to ``as_of`` by the NPS profile (fewer for tech touch)."""
    low, high = _shape(profiles, "nps")["nps"]
    for k in range(rng.randint(0, 2 if touch == "tech" else 4)):
        answered = as_of - timedelta(days=rng.randint(0, 179))
        if floor and answered < floor:
            continue
        out.append((org_id, account_id, f"DEMO-NPS-{key}-{k + 1}", "nps", rng.randint(low, high), "",
                    _at(answered, rng)))  # fmt: skip


def seed_health(
    organization: Organization, *, seed: int, today: date, log: Callable[[str], None] | None = None
) -> dict[str, int]:
    """Seed the demo organization's health signals and score history; returns row counts."""
    say = log or (lambda message: None)
    org_id = organization.pk
    big = Account.objects.for_org(organization).count() > BIG
    days = 60 if big else 90
    metrics = ("active_users", "events") if big else ("active_users", "events", "sessions")
    seats = dict(
        Contract.objects.for_org(organization)
        .filter(start_date__lte=today, end_date__gte=today)
        .exclude(status="cancelled")
        .order_by()
        .values("account_id")
        .annotate(s=Sum("seats"))
        .values_list("account_id", "s")
    )
    champions: dict[int, int] = {}
    for contact_id, account_id in (
        Contact.objects.for_org(organization)
        .filter(is_active=True, roles__icontains='"champion"')
        .order_by("id")
        .values_list("id", "account_id")
    ):
        champions.setdefault(account_id, contact_id)
    usage: list[Any] = []  # tuples, or on Postgres COPY lines (one per row)
    usage_rows = 0
    as_lines = connection.vendor == "postgresql"
    with_sessions = "sessions" in metrics
    window_start = today - timedelta(days=days - 1)
    window = [
        (d, d.isoformat(), 1.0 if d.weekday() < 5 else 0.35)
        for d in (window_start + timedelta(days=k) for k in range(days))
    ]
    tickets: list[tuple[Any, ...]] = []
    invoices: list[tuple[Any, ...]] = []
    responses: list[tuple[Any, ...]] = []
    pulses: list[tuple[Any, ...]] = []
    departures: list[Contact] = []
    accounts = (
        Account.objects.for_org(organization)
        .order_by("id")
        .values_list("id", "external_id", "touch_model", "customer_since", "churned_at", "owner_id", "tags")
    )
    terms: dict[int, list[tuple[str, date, date, int | None]]] = {}
    for account_id, number, start, end, term_seats in (
        Contract.objects.for_org(organization)
        .exclude(status="cancelled")
        .order_by("account_id", "start_date", "id")
        .values_list("account_id", "number", "start_date", "end_date", "seats")
    ):
        terms.setdefault(account_id, []).append((number, start, end, term_seats))
    past_step = 7 if big else 1  # big demos: one usage day a week in the past windows (bounded row count)
    with bulk_load(connection, org_id, [UsageMetric, Ticket, Invoice, SurveyResponse, CsmPulse]):
        for account_id, external_id, touch, since, churned_at, owner_id, tags in accounts:
            number = "".join(ch for ch in (external_id or "") if ch.isdigit()) or str(account_id)
            rng = random.Random(f"{seed}:health:{number}")
            account_terms = terms.get(account_id, [])
            profile_of_term = {
                t[0]: signal_profiles(seed, t[0], period_risk(seed, external_id, t[0])) for t in account_terms
            }
            live = [t for t in account_terms if t[1] <= today <= t[2]] if churned_at is None else []
            # Past windows: the ~6 months before as-of = due − 90 of every ended term (its closed renewal).
            windows = [(t[2] - timedelta(days=AS_OF_LEAD), t) for t in account_terms if t[2] < today]
            windows = [(as_of, t) for as_of, t in windows if since is None or as_of > since]
            last_past = max((as_of for as_of, _ in windows), default=None)
            prefix = f"{org_id}\t{account_id}\t"

            for as_of, (term, _start, _end, term_seats) in windows:
                wrng = random.Random(f"{seed}:health:window:{term}")
                profiles = profile_of_term[term]
                share = wrng.uniform(*_shape(profiles, "adoption")["active"])
                trend = wrng.uniform(*_shape(profiles, "usage_trend")["trend"])
                per_user = wrng.uniform(8, 25)
                seat_count = term_seats or wrng.randint(10, 200)
                first = as_of - timedelta(days=PAST_USAGE_DAYS - 1)
                if since and first < since:
                    first = since
                span = max(1, (as_of - first).days)
                for k in range(0, span + 1, past_step):
                    day = first + timedelta(days=k)
                    weekday = 1.0 if day.weekday() < 5 else 0.35
                    users = int(seat_count * share * (1 + trend * (k / span)) * weekday * wrng.uniform(0.85, 1.15))
                    if users > 0:
                        events = int(users * per_user * wrng.uniform(0.8, 1.2))
                        _usage(usage, as_lines, prefix, (org_id, account_id), day, users, events, None)
                _tickets(tickets, wrng, org_id, account_id, f"{number}-{term}", profiles, as_of, since, live=False)
                _responses(responses, wrng, org_id, account_id, f"{number}-{term}", profiles, as_of, touch, since)
                if touch != "tech" and owner_id:
                    for j in range(2):
                        if wrng.random() < 0.85:
                            pulse = _shape(profiles, "csm_pulse")["pulse"]
                            color = wrng.choices([c for c, _ in pulse], weights=[w for _, w in pulse])[0]
                            created = _at(as_of - timedelta(days=30 * j + wrng.randint(0, 29)), wrng)
                            pulses.append((org_id, account_id, color, [], "", owner_id, created))
            # Invoices: quarterly over every term, paid late (or not yet) by the term's financial profile.
            billing_day = rng.randint(0, 30)
            q_total = 0
            for term, start, end, term_seats in account_terms:
                irng = random.Random(f"{seed}:health:invoices:{term}")
                profile = profile_of_term[term]["financial"]
                for q in range(4):
                    due = start + timedelta(days=91 * q + billing_day)
                    if due > min(end, today + timedelta(days=30)):
                        break
                    late = irng.random() < LATE_ODDS[profile]
                    lateness = irng.randint(*LATENESS[profile]) if late else irng.randint(-10, 10)
                    paid = due + timedelta(days=lateness)
                    if paid > today:
                        paid = None
                    amount = Decimal((term_seats or 20) * irng.randint(80, 120))
                    q_total += 1
                    invoices.append((org_id, account_id, f"DEMO-INV-{number}-{q_total}", due, amount, "USD", paid))
            if len(usage) >= USAGE_FLUSH:  # bounded memory on big demos
                usage_rows += len(usage)
                _insert(UsageMetric, USAGE_COLUMNS, usage)
                usage = []
            if churned_at is not None or not live:
                continue
            # The live term: today's signals (what the Portfolio shows), as of today.
            profiles = profile_of_term[live[-1][0]]
            if "at-risk" in (tags or []) and rng.random() < 0.6:  # the CSM's flag: every signal shows it today
                profiles = dict.fromkeys(profiles, "critical")
            first = max(since or today, today - timedelta(days=days - 1)) if since else today - timedelta(days=days - 1)
            seat_count = seats.get(account_id) or rng.randint(10, 200)
            share = rng.uniform(*_shape(profiles, "adoption")["active"])
            trend = rng.uniform(*_shape(profiles, "usage_trend")["trend"])
            per_user = rng.uniform(8, 25)
            span = max(1, (today - first).days)
            offset = (first - window_start).days
            for k, (day, _text, weekday) in enumerate(window[offset:]):
                users = int(seat_count * share * (1 + trend * (k / span)) * weekday * rng.uniform(0.85, 1.15))
                if users > 0:
                    events = int(users * per_user * rng.uniform(0.8, 1.2))
                    sessions = int(users * rng.uniform(1.1, 1.6))
                    _usage(usage, as_lines, prefix, (org_id, account_id), day, users, events,
                           sessions if with_sessions else None)  # fmt: skip
            # Tickets and NPS of the live term start after the last past window (no double counting).
            floors = [d for d in (since, last_past + timedelta(days=1) if last_past else None) if d]
            floor = max(floors) if floors else None
            _tickets(tickets, rng, org_id, account_id, number, profiles, today, floor, live=True)
            _responses(responses, rng, org_id, account_id, number, profiles, today, touch, floor)
            if touch != "tech" and owner_id and rng.random() < 0.85:
                pulse = _shape(profiles, "csm_pulse")["pulse"]
                color = rng.choices([c for c, _ in pulse], weights=[w for _, w in pulse])[0]
                pulses.append(
                    (org_id, account_id, color, [], "", owner_id, _at(today - timedelta(rng.randint(0, 40)), rng))
                )
            if profiles["relationship"] == "critical" and account_id in champions and rng.random() < 0.5:
                departures.append(
                    Contact(
                        pk=champions[account_id],
                        is_active=False,
                        departed_at=today - timedelta(days=rng.randint(5, 60)),
                    )
                )
        usage_rows += len(usage)
        say(f"  health signals: {usage_rows} usage rows, {len(tickets)} tickets…")
        _insert(UsageMetric, USAGE_COLUMNS, usage)
        _insert(
            Ticket,
            [
                "organization_id",
                "account_id",
                "external_id",
                "opened_at",
                "priority",
                "status",
                "resolved_at",
                "subject",
            ],
            tickets,
        )
        _insert(Invoice, ["organization_id", "account_id", "external_id", "due_date", "amount", "currency", "paid_at"],
                invoices)  # fmt: skip
        _insert(
            SurveyResponse,
            ["organization_id", "account_id", "external_id", "kind", "score", "comment", "responded_at"],
            responses,
        )
        _insert(CsmPulse, ["organization_id", "account_id", "color", "reason_codes", "note", "author_id", "created_at"],
                pulses)  # fmt: skip
    if departures:
        Contact.all_orgs.bulk_update(departures, ["is_active", "departed_at"], batch_size=1000)
    if connection.vendor == "postgresql":
        # Planner statistics for the rows just loaded (ANALYZE counts this transaction's own inserts):
        # without them the backfill's aggregates over millions of usage rows plan as if tables were empty.
        with connection.cursor() as cursor:
            for model in (UsageMetric, Ticket, Invoice, SurveyResponse, CsmPulse, Contact, Contract, Account):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    history = [30, 7] if big else sorted({*range(1, 31), *range(35, 91, 7)}, reverse=True)
    say(f"  health history: {len(history) + 1} recomputes…")
    for back in history:
        recompute_health(organization, as_of=today - timedelta(days=back), latest=False, emit_events=False)
        say(f"  health as of {back} days ago…")
    result = recompute_health(organization, as_of=today, latest=True, emit_events=False)
    return {
        "usage_metrics": usage_rows,
        "tickets": len(tickets),
        "invoices": len(invoices),
        "nps_responses": len(responses),
        "csm_pulses": len(pulses),
        "health_snapshots": result.accounts * (len(history) + 1),
        "health_scores": result.scored,
    }


def seed(
    organization: Organization, *, seed: int, today: date, log: Callable[[str], None] | None = None
) -> dict[str, int]:
    """accounts.demo.seed_demo's hook (registered in HealthConfig.ready): signals and score history."""
    return seed_health(organization, seed=seed, today=today, log=log)
