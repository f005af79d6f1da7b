"""factory_boy factories of the health signals (usage events and metrics, tickets, invoices) and of the health
engine's records (snapshots, latest scores, overrides, pulses)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from health.models import (
    CsmPulse,
    HealthOverride,
    HealthScore,
    HealthSnapshot,
    Invoice,
    Ticket,
    UsageEvent,
    UsageMetric,
)

from .factories import AccountFactory, TenantFactory


class UsageEventFactory(TenantFactory):
    class Meta:
        model = UsageEvent

    organization = factory.SelfAttribute("account.organization")
    account = factory.SubFactory(AccountFactory)
    message_id = factory.Sequence(lambda n: f"msg-{n}")
    type = "track"
    event = "Page Viewed"
    user_id = "u1"
    timestamp = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)


class UsageMetricFactory(TenantFactory):
    class Meta:
        model = UsageMetric

    account = factory.SubFactory(AccountFactory)
    organization = factory.SelfAttribute("account.organization")
    date = factory.Sequence(lambda n: dt.date(2026, 1, 1) + dt.timedelta(days=n))
    metric = "events"
    value = Decimal("12")


class TicketFactory(TenantFactory):
    class Meta:
        model = Ticket

    account = factory.SubFactory(AccountFactory)
    organization = factory.SelfAttribute("account.organization")
    external_id = factory.Sequence(lambda n: f"TK-{n}")
    opened_at = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
    priority = "P3"
    status = "open"


class InvoiceFactory(TenantFactory):
    class Meta:
        model = Invoice

    account = factory.SubFactory(AccountFactory)
    organization = factory.SelfAttribute("account.organization")
    external_id = factory.Sequence(lambda n: f"INV-{n}")
    due_date = dt.date(2026, 11, 30)
    amount = Decimal("1200.00")


def components(scores: dict[str, float | None], weights: dict[str, float] | None = None) -> list[dict]:
    """Snapshot components in the engine's stored shape: effective shares over the scored ones."""
    weights = weights or dict.fromkeys(scores, 1.0)
    total = sum(weights[k] for k, v in scores.items() if v is not None) or 1.0
    out = []
    for key, score in scores.items():
        share = weights[key] / total if score is not None else 0.0
        out.append(
            {
                "key": key,
                "name": key.replace("_", " ").capitalize(),
                "group": None,
                "signal": score,
                "score": score,
                "weight": share,
                "contribution": None if score is None else share * score,
            }
        )
    return out


def score_of(comps: list[dict]) -> Decimal | None:
    scored = [c for c in comps if c["score"] is not None]
    if not scored:
        return None
    return Decimal(str(round(sum(c["weight"] * c["score"] for c in scored), 1)))


def color_of(score: Decimal | None) -> str:
    if score is None:
        return ""
    return "red" if score < 50 else "yellow" if score < 75 else "green"


class HealthSnapshotFactory(TenantFactory):
    class Meta:
        model = HealthSnapshot

    account = factory.SubFactory(AccountFactory)
    organization = factory.SelfAttribute("account.organization")
    date = factory.LazyFunction(timezone.localdate)
    computed_at = factory.LazyFunction(timezone.now)
    components = factory.LazyFunction(lambda: components({"adoption": 80.0, "support": 40.0}))
    score = factory.LazyAttribute(lambda o: score_of(o.components))
    color = factory.LazyAttribute(lambda o: color_of(o.score))
    missing = factory.LazyAttribute(lambda o: [c["key"] for c in o.components if c["score"] is None])


class HealthScoreFactory(TenantFactory):
    class Meta:
        model = HealthScore

    account = factory.SubFactory(AccountFactory)
    organization = factory.SelfAttribute("account.organization")
    score = Decimal("60.0")
    computed_color = factory.LazyAttribute(lambda o: color_of(o.score))
    color = factory.LazyAttribute(lambda o: o.computed_color)
    computed_at = factory.LazyFunction(timezone.now)
    trend = "flat"


class HealthOverrideFactory(TenantFactory):
    class Meta:
        model = HealthOverride

    account = factory.SubFactory(AccountFactory)
    organization = factory.SelfAttribute("account.organization")
    color = "red"
    reason_code = "other"
    reason = "Escalation"
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))


class CsmPulseFactory(TenantFactory):
    class Meta:
        model = CsmPulse

    account = factory.SubFactory(AccountFactory)
    organization = factory.SelfAttribute("account.organization")
    color = "yellow"
    reason_codes = factory.LazyFunction(lambda: ["low_engagement"])
    created_at = factory.LazyFunction(timezone.now)
