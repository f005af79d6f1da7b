"""Segment fields derived from survey answers (registered from ``FeedbackConfig.ready``).

- ``nps``: the account's NPS (spec §6) over its ``nps`` responses of the last 12 months (the 365 days
  ending today, organization time zone): % promoters (9–10) − % detractors (0–6), −100…100, unrounded.
  Empty without a response in that window.
- ``nps_last_score``: the score (0–10) of the account's most recent ``nps`` response, whatever its age.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, FloatField, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast

from accounts.segments import Derived, RuleContext, register_derived

NPS_WINDOW_DAYS = 365


def account_nps(ctx: RuleContext) -> Subquery:
    from .models import SurveyKind, SurveyResponse

    since = ctx.day_start(ctx.today - timedelta(days=NPS_WINDOW_DAYS - 1))
    until = ctx.day_start(ctx.today + timedelta(days=1))
    promoters = Cast(Count("id", filter=Q(score__gte=9)), FloatField())
    detractors = Cast(Count("id", filter=Q(score__lte=6)), FloatField())
    rows = (
        SurveyResponse.all_orgs.filter(
            organization_id=OuterRef("organization_id"),
            account_id=OuterRef("pk"),
            kind=SurveyKind.NPS,
            responded_at__gte=since,
            responded_at__lt=until,
        )
        .order_by()
        .values("account_id")
        .annotate(nps=(promoters - detractors) * Value(100.0) / Cast(Count("id"), FloatField()))
    )
    return Subquery(rows.values("nps")[:1], output_field=FloatField())


def last_nps_score(ctx: RuleContext) -> Subquery:
    from .models import SurveyKind, SurveyResponse

    rows = SurveyResponse.all_orgs.filter(
        organization_id=OuterRef("organization_id"), account_id=OuterRef("pk"), kind=SurveyKind.NPS
    ).order_by("-responded_at", "-pk")
    return Subquery(rows.values("score")[:1], output_field=IntegerField())


def register() -> None:
    register_derived("nps", Derived(value=account_nps, places=2, limit=1000), label="NPS, last 12 months")
    register_derived("nps_last_score", Derived(value=last_nps_score, limit=1000), label="Latest NPS score (0–10)")
