"""Demo health signals and score history (called at the end of ``accounts.demo.seed_demo``).

Deterministic like the rest of the demo: every account draws from ``random.Random(f"{seed}:health:{n}")``
(``n`` from its external id) and dates are relative to the seed's "today". Each live account gets a
*health profile* — ``healthy`` (≈55 %), ``at_risk`` (≈30 %) or ``critical`` (≈15 %; accounts tagged
``at-risk`` lean that way) — which drives its signals, so the demo shows reds, yellows and greens with
reasons that hold together:

- daily usage from the account's first day (at most 90 days back): ``active_users`` (a share of the
  licensed seats, weekday/weekend rhythm, a trend up for healthy accounts and down for the others),
  ``events`` and ``sessions``;
- support tickets of the last 180 days (more, and more P1s, for worse profiles; recent ones open);
- invoices (quarterly, 2 years; worse profiles leave the latest ones unpaid and overdue);
- NPS responses of the last 180 days; CSM pulses for high- and low-touch accounts;
- critical accounts lose their champion (departed in the last 60 days).

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


def _profile(rng: random.Random, tags: list[str]) -> str:
    if "at-risk" in (tags or []):
        return "critical" if rng.random() < 0.6 else "at_risk"
    return rng.choices([p for p, _ in PROFILES], weights=[w for _, w in PROFILES])[0]


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
    with bulk_load(connection, org_id, [UsageMetric, Ticket, Invoice, SurveyResponse, CsmPulse]):
        for account_id, external_id, touch, since, churned_at, owner_id, tags in accounts:
            if churned_at is not None:
                continue
            number = "".join(ch for ch in (external_id or "") if ch.isdigit()) or str(account_id)
            rng = random.Random(f"{seed}:health:{number}")
            profile = _profile(rng, tags)
            shape = SHAPES[profile]
            first = max(since or today, today - timedelta(days=days - 1)) if since else today - timedelta(days=days - 1)
            seat_count = seats.get(account_id) or rng.randint(10, 200)
            share = rng.uniform(*shape["active"])
            trend = rng.uniform(*shape["trend"])
            per_user = rng.uniform(8, 25)
            span = max(1, (today - first).days)
            offset = (first - window_start).days
            prefix = f"{org_id}\t{account_id}\t"
            for k, (day, text, weekday) in enumerate(window[offset:]):
                users = int(seat_count * share * (1 + trend * (k / span)) * weekday * rng.uniform(0.85, 1.15))
                if users > 0:
                    events = int(users * per_user * rng.uniform(0.8, 1.2))
                    sessions = int(users * rng.uniform(1.1, 1.6))
                    if as_lines:  # the hot loop of big demos: COPY lines straight away, no tuples or Decimals
                        usage.append(f"{prefix}{text}\tactive_users\t{users}\n")
                        usage.append(f"{prefix}{text}\tevents\t{events}\n")
                        if with_sessions:
                            usage.append(f"{prefix}{text}\tsessions\t{sessions}\n")
                    else:
                        values = {"active_users": users, "events": events, "sessions": sessions}
                        for metric in metrics:
                            usage.append((org_id, account_id, day, metric, Decimal(values[metric])))
            if len(usage) >= USAGE_FLUSH:  # bounded memory on big demos
                usage_rows += len(usage)
                _insert(UsageMetric, USAGE_COLUMNS, usage)
                usage = []
            for k in range(rng.randint(*shape["tickets"])):
                opened = today - timedelta(days=rng.randint(0, 179))
                if since and opened < since:
                    continue
                recent = (today - opened).days <= 14
                still_open = recent and rng.random() < 0.5
                priority = "P1" if rng.random() < shape["p1"] else rng.choice(["P2", "P3", "P3", "P4"])
                resolved = None if still_open else _at(min(today, opened + timedelta(days=rng.randint(0, 6))), rng)
                tickets.append(
                    (org_id, account_id, f"DEMO-TK-{number}-{k + 1}", _at(opened, rng), priority,
                     "open" if still_open else "solved", resolved, "")
                )  # fmt: skip
            for q in range(8):
                due = today - timedelta(days=91 * q - rng.randint(0, 30))
                if since and due < since:
                    break
                paid = due + timedelta(days=rng.randint(-10, 10))
                overdue_risk = {"healthy": 0.03, "at_risk": 0.35, "critical": 0.6}[profile]
                if q <= 1 and due < today and rng.random() < overdue_risk:
                    paid = None
                if paid is not None and paid > today:
                    paid = None
                amount = Decimal(seat_count * rng.randint(80, 120))
                invoices.append((org_id, account_id, f"DEMO-INV-{number}-{q + 1}", due, amount, "USD", paid))
            for k in range(rng.randint(0, 2 if touch == "tech" else 4)):
                answered = today - timedelta(days=rng.randint(0, 179))
                if since and answered < since:
                    continue
                low, high = shape["nps"]
                responses.append((org_id, account_id, f"DEMO-NPS-{number}-{k + 1}", "nps", rng.randint(low, high), "",
                                  _at(answered, rng)))  # fmt: skip
            if touch != "tech" and owner_id and rng.random() < 0.85:
                color = rng.choices([c for c, _ in shape["pulse"]], weights=[w for _, w in shape["pulse"]])[0]
                pulses.append(
                    (org_id, account_id, color, [], "", owner_id, _at(today - timedelta(rng.randint(0, 40)), rng))
                )
            if profile == "critical" and account_id in champions and rng.random() < 0.5:
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
