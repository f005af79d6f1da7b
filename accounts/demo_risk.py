"""The demo's latent renewal risk: one hidden number per account and contract term (``seed_demo`` only).

The demo's renewal outcomes and its health signals are drawn by different apps (renewals' history
builder runs before health's signals, feedback's survey answers after), yet they must tell one story:
an account heading for churn shows it in its signals months before the renewal. Every part of the demo
therefore asks this module, which sits in the lowest layer they all import, for the same deterministic
numbers, derived from the seed, the account's external id and the contract's number alone:

* :func:`period_risk` — ``z ~ N(0, 1)``, the risk of one contract term (higher = riskier):
  ``0.7 × account risk + 0.71 × term risk``, so a risky account tends to stay risky but terms differ;
* :func:`churn_multiplier` — how ``z`` scales a tier's base churn hazard at that term's renewal
  (log-normal with mean 1: the book's average churn rate does not move);
* :func:`signal_profiles` — per health signal, a profile ``healthy`` / ``at_risk`` / ``critical`` that
  the signal's generator uses for that term. Each signal reads its own noisy copy of ``z``:
  ``x = λ·z + √(1−λ²)·ε`` with the signal's *loading* λ (:data:`LOADINGS`), cut at the quantiles of
  the old fixed shares (55 % healthy, 30 % at risk, 15 % critical).

The loadings are chosen so the demo is honest about what predicts churn: relationship (key-contact
departures), financial (overdue invoices) and engagement (time since the last touch) carry the risk
most strongly although the default scorecard weights them least; adoption, which the default weights
most, is only loosely tied to it. A backtest of the default scorecard is meaningful but far from
perfect, and fitted weights can beat it (docs/admin-guide.md, "Demo data").
"""

from __future__ import annotations

import math
import random

__all__ = [
    "LOADINGS",
    "PROFILES",
    "churn_multiplier",
    "period_risk",
    "profile_of",
    "signal_profiles",
]

#: signal → loading λ on the term's risk (0 = unrelated to the outcome, 1 = the risk itself).
LOADINGS: dict[str, float] = {
    "adoption": 0.1,
    "usage_trend": 0.25,
    "support": 0.4,
    "nps": 0.6,
    "engagement": 0.85,
    "relationship": 0.9,
    "financial": 0.9,
    "csm_pulse": 0.65,
}
#: (profile, share of terms): the cut points of every signal's latent value.
PROFILES = (("healthy", 0.55), ("at_risk", 0.30), ("critical", 0.15))
_CUTS = (0.1257, 1.0364)  # standard normal quantiles at 0.55 and 0.85
#: strength of z on the churn hazard (log-normal multiplier exp(B·z − B²/2), mean 1)
CHURN_STRENGTH = 2.0


def _gauss(key: str) -> float:
    return random.Random(key).gauss(0.0, 1.0)


def period_risk(seed: int, account_external_id: str, contract_number: str) -> float:
    """The latent risk ``z`` (≈ N(0, 1)) of the account's term under ``contract_number``."""
    account = _gauss(f"{seed}:risk:account:{account_external_id}")
    term = _gauss(f"{seed}:risk:term:{contract_number}")
    return 0.7 * account + math.sqrt(1 - 0.49) * term


def churn_multiplier(z: float, strength: float = CHURN_STRENGTH) -> float:
    """exp(strength·z − strength²/2): multiplies a base hazard; mean 1 over z ~ N(0, 1)."""
    return math.exp(strength * z - strength * strength / 2)


def profile_of(x: float) -> str:
    """``healthy`` / ``at_risk`` / ``critical`` for a standard normal value (55 / 30 / 15 %)."""
    if x < _CUTS[0]:
        return "healthy"
    return "at_risk" if x < _CUTS[1] else "critical"


def signal_profiles(seed: int, contract_number: str, z: float) -> dict[str, str]:
    """Each health signal's profile for the term ``contract_number`` of risk ``z`` (see the module doc)."""
    rng = random.Random(f"{seed}:risk:signals:{contract_number}")
    out = {}
    for signal, loading in LOADINGS.items():
        x = loading * z + math.sqrt(1 - loading * loading) * rng.gauss(0.0, 1.0)
        out[signal] = profile_of(x)
    return out
