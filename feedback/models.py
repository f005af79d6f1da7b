"""Voice of the customer (spec §6). For now the survey **response**, which the health engine reads as
its sentiment signal (NPS of the last 180 days). Surveys, sends and feature requests arrive with the
voice-of-the-customer issue and will point their responses at a survey then.
"""

from __future__ import annotations

from django.db import models

from cs_platform.tenancy import OrgScopedModel

from .models_requests import *  # noqa: F403  (feature requests: requests, account links, audit)

__all__ = ["SurveyKind", "SurveyResponse"]


class SurveyKind(models.TextChoices):
    NPS = "nps", "NPS (0–10)"
    CSAT = "csat", "CSAT (1–5)"
    CES = "ces", "CES (1–7)"


#: Inclusive score range of each survey kind.
SCORE_RANGES = {SurveyKind.NPS: (0, 10), SurveyKind.CSAT: (1, 5), SurveyKind.CES: (1, 7)}


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

    class Meta(OrgScopedModel.Meta):
        ordering = ["-responded_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="feedback_response_unique_extid",
            )
        ]
        indexes = [
            models.Index(fields=["organization", "account", "responded_at"], name="feedback_response_org_acct"),
            models.Index(fields=["organization", "kind", "responded_at"], name="feedback_response_org_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.score}"
