"""Choices of the feedback app."""

from django.db import models


class SurveyKind(models.TextChoices):
    NPS = "nps", "NPS (0–10)"
    CSAT = "csat", "CSAT (1–5)"
    CES = "ces", "CES (1–7)"
