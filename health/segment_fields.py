"""Segment fields derived from health data (registered from ``HealthConfig.ready``; accounts imports
nothing of health). Definitions, all evaluated on today's date in the organization's time zone:

- ``health_color`` / ``health_score``: the account's latest effective colour and score
  (:class:`~health.models.HealthScore`).
- ``health_delta_7`` / ``health_delta_30``: score points gained (+) or lost (−) against the snapshot 7 /
  30 days before the latest one, as the last recompute stored them; empty without that snapshot.
- ``usage_trend_events`` / ``usage_trend_active_users``: % change of the daily usage metric
  (``events`` / ``active_users``) summed over the last 30 days (today and the 29 days before) against
  the 30 days before those: ``(last − prior) / prior × 100``. Empty when the prior 30 days sum to 0 or
  have no row (no baseline). This is the health engine's ``usage_trend`` signal for ``events``.
- ``open_p1_tickets``: P1 tickets open now (status ``open`` or ``pending`` and not resolved); 0 without any.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Case, Count, F, FloatField, IntegerField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Cast, Coalesce, NullIf

from accounts.segments import Derived, RuleContext, register_derived, register_field

USAGE_WINDOW = 30  # days of the "last" period, and of the prior one


def usage_trend(metric: str):  # noqa: ANN201  (a builder for Derived)
    def build(ctx: RuleContext) -> Subquery:
        from .models import UsageMetric

        last_from = ctx.today - timedelta(days=USAGE_WINDOW - 1)
        prior_from = last_from - timedelta(days=USAGE_WINDOW)
        recent = Q(date__gte=last_from)
        value = Cast(F("value"), FloatField())
        last = Sum(Case(When(recent, then=value), default=Value(0.0), output_field=FloatField()))
        prior = Sum(Case(When(~recent, then=value), output_field=FloatField()))
        rows = (
            UsageMetric.all_orgs.filter(
                organization_id=OuterRef("organization_id"),
                account_id=OuterRef("pk"),
                metric=metric,
                date__gte=prior_from,
                date__lte=ctx.today,
            )
            .order_by()
            .values("account_id")
            .annotate(trend=(last - prior) * Value(100.0) / NullIf(prior, Value(0.0)))
        )
        return Subquery(rows.values("trend")[:1], output_field=FloatField())

    return build


def open_p1_tickets(ctx: RuleContext) -> Coalesce:
    from .models import Ticket, TicketPriority, TicketStatus

    rows = (
        Ticket.all_orgs.filter(
            organization_id=OuterRef("organization_id"),
            account_id=OuterRef("pk"),
            priority=TicketPriority.P1,
            resolved_at__isnull=True,
            status__in=[TicketStatus.OPEN, TicketStatus.PENDING],
        )
        .order_by()
        .values("account_id")
        .annotate(n=Count("id"))
    )
    return Coalesce(Subquery(rows.values("n")[:1], output_field=IntegerField()), Value(0))


def register() -> None:
    register_field("health_color", "health__color", "text", label="Health colour")
    register_field("health_score", "health__score", "number", label="Health score")
    register_field("health_delta_7", "health__delta_7", "number", label="Health score change, 7 days (points)")
    register_field("health_delta_30", "health__delta_30", "number", label="Health score change, 30 days (points)")
    register_derived(
        "usage_trend_events",
        Derived(value=usage_trend("events"), places=2, limit=10**9),
        label="Usage trend: events, 30 d vs prior 30 d (%)",
    )
    register_derived(
        "usage_trend_active_users",
        Derived(value=usage_trend("active_users"), places=2, limit=10**9),
        label="Usage trend: active users, 30 d vs prior 30 d (%)",
    )
    register_derived("open_p1_tickets", Derived(value=open_p1_tickets), label="Open P1 tickets")
