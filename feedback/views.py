"""Feedback pages: the Account 360 survey panel (more below)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from .models import SurveyResponse


def account_responses(request: HttpRequest, account: Any) -> dict[str, Any]:
    """Account 360's survey responses panel: the account's latest 10 responses (one query)."""
    rows = list(
        SurveyResponse.objects.for_org(account.organization_id)
        .filter(account=account)
        .select_related("contact", "survey")
        .order_by("-responded_at", "-pk")[:10]
    )
    return {"survey_responses": rows}
