"""factory_boy factories of the health signals (usage events and metrics, tickets, invoices)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory

from health.models import Invoice, Ticket, UsageEvent, UsageMetric

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
