"""The default scorecard of spec §3, created with every organization (and on demand for older ones).

Signals (what a component's ``signal`` may name; computed by ``health.signals``):

==================  =====================================================================================
``adoption``        active users in the last 30 days ÷ licensed seats (seats of the active contracts)
``usage_trend``     % change of ``events`` in the last 30 days vs the 30 days before (−40 means −40 %)
``support``         tickets opened in the last 90 days (the component's ``penalty`` takes 25 points per
                    open P1)
``nps``             NPS (−100…100) of the account's NPS responses in the last 180 days
``engagement``      days since the last customer touch ÷ the touch model's cadence (tech touch: no data)
``relationship``    ``both`` (champion and executive sponsor active, no key-contact departure in 90 days),
                    ``one``, ``none`` or ``departed``
``financial``       max days overdue across unpaid invoices (0 when every invoice is paid or not yet due)
``csm_pulse``       the latest CSM pulse colour (``green``/``yellow``/``red``), missing when older than 30 days
``usage:<metric>``  any daily usage metric, summed over the last 30 days
==================  =====================================================================================
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

__all__ = ["BUILTIN_SIGNALS", "DEFAULT_SCORECARD", "DEFAULT_SCORECARD_NAME", "ensure_default_scorecard"]

BUILTIN_SIGNALS = (
    "adoption",
    "usage_trend",
    "support",
    "nps",
    "engagement",
    "relationship",
    "financial",
    "csm_pulse",
)

DEFAULT_SCORECARD_NAME = "Default"

# Weights are relative (normalised when scoring). Bands list upper-inclusive thresholds in order.
DEFAULT_SCORECARD: dict[str, Any] = {
    "groups": [],
    "components": [
        {
            "key": "adoption",
            "name": "Adoption",
            "group": None,
            "signal": "adoption",
            "weight": 25,
            "function": {"type": "linear", "x0": 0.10, "x100": 0.60},
        },
        {
            "key": "usage_trend",
            "name": "Usage trend",
            "group": None,
            "signal": "usage_trend",
            "weight": 15,
            "function": {"type": "linear", "x0": -40, "x100": 10},
        },
        {
            "key": "support",
            "name": "Support",
            "group": None,
            "signal": "support",
            "weight": 10,
            "function": {
                "type": "target_band",
                "low": 1,
                "high": 6,
                "lower_limit": 0,
                "lower_limit_score": 70,
                "upper_limit": 20,
                "upper_limit_score": 0,
            },
            "penalty": {"per": "open_p1_tickets", "points": 25},
        },
        {
            "key": "nps",
            "name": "Sentiment (NPS)",
            "group": None,
            "signal": "nps",
            "weight": 15,
            "function": {"type": "linear", "x0": -50, "x100": 50},
        },
        {
            "key": "engagement",
            "name": "Engagement",
            "group": None,
            "signal": "engagement",
            "weight": 10,
            "function": {"type": "linear", "x0": 2.0, "x100": 1.0},
        },
        {
            "key": "relationship",
            "name": "Relationship",
            "group": None,
            "signal": "relationship",
            "weight": 10,
            "function": {"type": "categorical", "points": {"both": 100, "one": 50, "none": 0, "departed": 0}},
        },
        {
            "key": "financial",
            "name": "Financial",
            "group": None,
            "signal": "financial",
            "weight": 5,
            "function": {
                "type": "bands",
                "bands": [{"max": 0, "score": 100}, {"max": 30, "score": 60}, {"max": 60, "score": 30}],
                "else": 0,
            },
        },
        {
            "key": "csm_pulse",
            "name": "CSM pulse",
            "group": None,
            "signal": "csm_pulse",
            "weight": 10,
            "function": {"type": "categorical", "points": {"green": 100, "yellow": 50, "red": 0}},
        },
    ],
}


@transaction.atomic
def ensure_default_scorecard(organization_id: int):  # -> Scorecard
    """The organization's default scorecard, created (version 1 = spec §3) when it has none. Idempotent."""
    from .models import Scorecard, ScorecardVersion

    existing = Scorecard.objects.for_org(organization_id).filter(is_default=True).first()
    if existing is not None:
        return existing
    scorecard = Scorecard.all_orgs.create(
        organization_id=organization_id, name=DEFAULT_SCORECARD_NAME, is_default=True, position=1000
    )
    version = ScorecardVersion.all_orgs.create(
        organization_id=organization_id,
        scorecard=scorecard,
        number=1,
        definition=DEFAULT_SCORECARD,
        note="Default scorecard: adoption, usage trend, support, NPS, engagement, relationship, financial, CSM pulse",
    )
    scorecard.current_version = version
    scorecard.save(update_fields=["current_version"])
    return scorecard
