"""Voice of the customer (spec §6). The survey **response**, which the health engine reads as its
sentiment signal (NPS of the last 180 days), and the surveys, sends and invitations of
:mod:`feedback.models_surveys` (re-exported here).

A response is one of three sources: ``import`` (the ``survey_responses`` CSV kind: history from a
previous tool), ``api`` (``POST /api/v1/survey-responses/``) or ``survey`` (answered on the public page,
then it points at its survey, send and invitation). Every source counts alike in every figure.
"""

from __future__ import annotations

from django.db import models

from cs_platform.tenancy import OrgScopedModel

from .choices import SurveyKind
from .models_requests import *  # noqa: F403  (feature requests: requests, account links, audit)
from .models_surveys import (
    InvitationStatus,
    SendSchedule,
    SendStatus,
    Survey,
    SurveyInvitation,
    SurveySend,
    SurveySettings,
)

__all__ = ["SurveyKind", "SurveyResponse"]

__all__ = [
    "SCORE_RANGES",
    "InvitationStatus",
    "ResponseSource",
    "SendSchedule",
    "SendStatus",
    "Survey",
    "SurveyInvitation",
    "SurveyKind",
    "SurveyResponse",
    "SurveySend",
    "SurveySettings",
    "response_category",
]


#: Inclusive score range of each survey kind.
SCORE_RANGES = {SurveyKind.NPS: (0, 10), SurveyKind.CSAT: (1, 5), SurveyKind.CES: (1, 7)}


def response_category(kind: str, score: int) -> str:
    """``detractor``, ``passive`` or ``promoter`` (the playbook trigger's categories).

    NPS as spec §6: 0–6 detractor, 7–8 passive, 9–10 promoter. CSAT: 1–2 detractor, 3 passive, 4–5
    promoter (satisfied). CES: 1–3 detractor, 4 passive, 5–7 promoter (easy)."""
    if kind == SurveyKind.CSAT:
        return "detractor" if score <= 2 else "passive" if score == 3 else "promoter"
    if kind == SurveyKind.CES:
        return "detractor" if score <= 3 else "passive" if score == 4 else "promoter"
    return "detractor" if score <= 6 else "passive" if score <= 8 else "promoter"


class ResponseSource(models.TextChoices):
    IMPORT = "import", "Imported"
    API = "api", "API"
    SURVEY = "survey", "Survey page"


class SurveyResponse(OrgScopedModel):
    """One answer of a contact (or of an account, when the contact is unknown) to an NPS/CSAT/CES question."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="survey_responses")
    contact = models.ForeignKey(
        "accounts.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="survey_responses"
    )
    external_id = models.CharField(max_length=120, null=True, blank=True)
    kind = models.CharField(max_length=4, choices=SurveyKind.choices, default=SurveyKind.NPS)
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    responded_at = models.DateTimeField()
    source = models.CharField(
        max_length=8, choices=ResponseSource.choices, default=ResponseSource.IMPORT, db_default=ResponseSource.IMPORT
    )
    survey = models.ForeignKey(Survey, null=True, blank=True, on_delete=models.SET_NULL, related_name="responses")
    send = models.ForeignKey(SurveySend, null=True, blank=True, on_delete=models.SET_NULL, related_name="responses")
    invitation = models.OneToOneField(
        SurveyInvitation, null=True, blank=True, on_delete=models.SET_NULL, related_name="response"
    )

    class Meta(OrgScopedModel.Meta):
        ordering = ["-responded_at"]
        constraints = [
            # Not partial: the import's upsert is ON CONFLICT (organization, external_id); NULLs stay distinct.
            models.UniqueConstraint(fields=["organization", "external_id"], name="feedback_response_unique_org_extid")
        ]
        indexes = [
            models.Index(fields=["organization", "account", "responded_at"], name="feedback_response_org_acct"),
            models.Index(fields=["organization", "kind", "responded_at"], name="feedback_response_org_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.score}"

    @property
    def category(self) -> str:
        return response_category(self.kind, self.score)
