"""Scorecard backtests and weight suggestions (issue 14): services.

A backtest takes one scorecard version (published or draft) and the closed renewals due in a window, scores
each renewal's account **as of** ``horizon_days`` before the due date — only what was known then
(``health.analytics.load_signals_at``) — with that version (``health.scoring.score_frame``, the function
``health.analytics.score_accounts`` applies per scorecard), and compares the scores with the outcomes. The
figures are computed by :mod:`renewals.analytics_backtest`; this module loads the rows, runs the job and
stores the result on :class:`renewals.models.Backtest`.

Outcomes: ``churned`` is a churn; ``renewed``, ``expanded`` and ``contracted`` are kept customers (a
contraction is not a churn, but the ARR it lost counts in "ARR lost"). Renewals still open are not scored.

Nothing is skipped silently: the result counts the renewals of the window that were left out and why —
``open`` (not closed yet), ``no_score`` (no component of the scorecard had data at the as-of day),
``churned_before`` (the account's ``churned_at`` is on or before the as-of day: it was gone already).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from cs_platform.celery import app as celery_app
from cs_platform.jobs import JobRecorder, create_job
from health import drafts
from health.analytics import load_signals_at
from health.models import Scorecard, ScorecardVersion
from health.scoring import DEFAULT_BANDS, score_frame, signals_of

from .analytics_backtest import SuggestionError, evaluate, suggest
from .models import Backtest, Renewal, RenewalOutcome

__all__ = [
    "BACKTEST_JOB_KIND",
    "BACKTEST_TASK",
    "DEFAULT_HORIZON_DAYS",
    "BacktestData",
    "NoSuggestion",
    "SuggestionError",
    "apply_suggestion_as_draft",
    "backtest_data",
    "run_backtest",
    "start_backtest",
    "suggest_weights",
]

#: The task's published name (``renewals/tasks.py`` is the top of the app: queued by name, never imported).
BACKTEST_TASK = "renewals.tasks.run_backtest_task"
BACKTEST_JOB_KIND = "scorecard_backtest"
DEFAULT_HORIZON_DAYS = 90
MAX_HORIZON_DAYS = 730
#: Progress steps: the pairs are loaded in this many slices of whole days.
PROGRESS_SLICES = 20


@dataclass
class BacktestData:
    """The scored renewals (one row each, see :func:`renewals.analytics_backtest.evaluate`) and the counts."""

    frame: pd.DataFrame
    in_window: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds: signals, scoring


def check_window(date_from: date, date_to: date, horizon_days: int) -> None:
    """Raise :class:`ValidationError` (per field) for an impossible window or horizon."""
    errors: dict[str, list[str]] = {}
    if date_from > date_to:
        errors["date_to"] = ["Must be on or after date_from."]
    if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        errors["horizon_days"] = [f"Must be between 1 and {MAX_HORIZON_DAYS} days."]
    if errors:
        raise ValidationError(errors)


def backtest_data(
    organization: Organization,
    definition: dict[str, Any],
    *,
    date_from: date,
    date_to: date,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    job: JobRecorder | None = None,
) -> BacktestData:
    """Score every closed renewal due in ``[date_from, date_to]`` as of ``due_date − horizon_days``.

    One query for the renewals, then ``load_signals_at`` over the (account, as-of day) pairs in up to 20
    slices of whole days (each slice advances the job's progress), then vectorised scoring.
    """
    rows = list(
        Renewal.objects.for_org(organization)
        .filter(due_date__gte=date_from, due_date__lte=date_to)
        .order_by("due_date", "id")
        .values_list("id", "account_id", "due_date", "outcome", "current_arr", "new_arr")
    )
    renewals = pd.DataFrame.from_records(
        rows, columns=["renewal_id", "account_id", "due_date", "outcome", "current_arr", "new_arr"]
    )
    data = BacktestData(frame=pd.DataFrame(), in_window=len(renewals))
    closed = renewals[renewals["outcome"] != ""].reset_index(drop=True)
    data.skipped = {"open": int(len(renewals) - len(closed)), "churned_before": 0, "no_score": 0}
    if job is not None:
        job.set_total(len(closed))
    keys = [c["key"] for c in definition.get("components") or []]
    if closed.empty:
        data.frame = _empty_frame(keys)
        return data
    closed["as_of"] = [d - timedelta(days=horizon_days) for d in closed["due_date"]]
    metrics = sorted(name.split(":", 1)[1] for name in signals_of(definition) if name.startswith("usage:"))
    days = sorted(set(closed["as_of"]))
    per_slice = max(1, math.ceil(len(days) / PROGRESS_SLICES))
    parts: list[pd.DataFrame] = []
    done = 0
    mark = time.perf_counter()
    for start in range(0, len(days), per_slice):
        chunk = set(days[start : start + per_slice])
        pairs = closed.loc[closed["as_of"].isin(chunk), ["account_id", "as_of"]]
        parts.append(load_signals_at(organization, pairs, usage_metrics=metrics))
        done += len(pairs)
        if job is not None:
            job.advance(done)
    signals = pd.concat(parts).reindex(closed.index)
    data.timings["signals"] = round(time.perf_counter() - mark, 3)
    mark = time.perf_counter()
    churned_at = pd.to_datetime(signals["churned_at"])
    gone = (churned_at.notna() & (churned_at <= pd.to_datetime(closed["as_of"]))).to_numpy()
    scored = score_frame(definition, signals, organization.health_bands or DEFAULT_BANDS)
    no_score = scored["score"].isna().to_numpy() & ~gone
    data.skipped["churned_before"] = int(gone.sum())
    data.skipped["no_score"] = int(no_score.sum())
    keep = ~(gone | no_score)
    current = pd.to_numeric(closed["current_arr"]).astype(float)
    new = pd.to_numeric(closed["new_arr"]).astype(float).fillna(0.0)
    churned = (closed["outcome"] == RenewalOutcome.CHURNED).to_numpy()
    contracted = (closed["outcome"] == RenewalOutcome.CONTRACTED).to_numpy()
    lost = np.where(churned, current, np.where(contracted, (current - new).clip(lower=0.0), 0.0))
    frame = pd.DataFrame(
        {
            "renewal_id": closed["renewal_id"].astype(int),
            "account_id": closed["account_id"].astype(int),
            "due_date": closed["due_date"],
            "as_of": closed["as_of"],
            "outcome": closed["outcome"],
            "churned": churned,
            "current_arr": current,
            "arr_lost": lost,
            "score": scored["score"],
            "color": scored["color"],
            **{f"score:{k}": scored[f"score:{k}"] for k in keys},
        }
    )
    data.frame = frame[keep].reset_index(drop=True)
    data.timings["scoring"] = round(time.perf_counter() - mark, 3)
    return data


def _empty_frame(keys: list[str]) -> pd.DataFrame:
    columns = ["renewal_id", "account_id", "due_date", "as_of", "outcome", "churned", "current_arr", "arr_lost"]
    return pd.DataFrame(columns=[*columns, "score", "color", *(f"score:{k}" for k in keys)])


def start_backtest(
    organization: Organization,
    *,
    scorecard: Scorecard,
    version: ScorecardVersion | None = None,
    date_from: date,
    date_to: date,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    user: Any = None,
) -> Backtest:
    """Record a queued backtest of ``version`` (default: the scorecard's current version) and queue its job
    once the caller's transaction commits. Raises :class:`ValidationError` for a version of another
    scorecard, an empty window or a horizon outside 1–730 days."""
    check_window(date_from, date_to, horizon_days)
    version = version or scorecard.current_version
    if version is None or version.scorecard_id != scorecard.pk or version.organization_id != organization.pk:
        raise ValidationError({"scorecard_version": ["Choose a version of this scorecard."]})
    user = user if getattr(user, "pk", None) else None  # an anonymous or missing user records nobody
    job = create_job(
        organization_id=organization.pk,
        kind=BACKTEST_JOB_KIND,
        params={"scorecard": scorecard.pk, "version": version.pk},
        user=user,
    )
    backtest = Backtest.all_orgs.create(
        organization_id=organization.pk,
        scorecard=scorecard,
        scorecard_version=version,
        date_from=date_from,
        date_to=date_to,
        horizon_days=horizon_days,
        job=job,
        created_by=user,
    )
    job.params = {**job.params, "backtest": backtest.pk}
    job.save(update_fields=["params"])
    org_id, backtest_id, job_id = organization.pk, backtest.pk, job.pk
    # robust: a broker that is down never fails the caller after its commit (the backtest stays queued, shown so).
    transaction.on_commit(
        lambda: celery_app.tasks[BACKTEST_TASK].delay(org_id, backtest_id, job_id=job_id), robust=True
    )
    return backtest


def run_backtest(organization: Organization, backtest: Backtest, *, job: JobRecorder | None = None) -> dict[str, Any]:
    """Compute and store the backtest's result (safe to run again: the result is replaced).

    ``result`` keys: ``version`` (its number), ``window`` (``date_from``, ``date_to``, ``horizon_days``),
    ``in_window`` (renewals due in the window), ``scored``, ``skipped`` (``open``, ``churned_before``,
    ``no_score``), ``bands_thresholds``, ``timings`` (seconds: signals, scoring, suggestion), every figure
    of :func:`renewals.analytics_backtest.evaluate`, and
    ``suggestion`` (:func:`renewals.analytics_backtest.suggest` on the same renewals, or ``{"error": ...}``).
    """
    definition = backtest.scorecard_version.definition
    data = backtest_data(
        organization,
        definition,
        date_from=backtest.date_from,
        date_to=backtest.date_to,
        horizon_days=backtest.horizon_days,
        job=job,
    )
    result: dict[str, Any] = {
        "version": backtest.scorecard_version.number,
        "window": {
            "date_from": str(backtest.date_from),
            "date_to": str(backtest.date_to),
            "horizon_days": backtest.horizon_days,
        },
        "in_window": data.in_window,
        "scored": len(data.frame),
        "skipped": data.skipped,
        "bands_thresholds": dict(organization.health_bands or DEFAULT_BANDS),
        **evaluate(data.frame, definition.get("components") or []),
    }
    mark = time.perf_counter()
    try:
        result["suggestion"] = suggest(definition, data.frame)
    except SuggestionError as exc:
        result["suggestion"] = {"error": str(exc)}
    result["timings"] = {**data.timings, "suggestion": round(time.perf_counter() - mark, 3)}
    if job is not None:
        job.count(scored=len(data.frame), **{f"skipped_{k}": v for k, v in data.skipped.items()})
    Backtest.all_orgs.filter(pk=backtest.pk).update(result=result, finished_at=timezone.now())
    backtest.result = result
    backtest.frame = data.frame  # the scored renewals, for callers in the same process (the benchmark)
    return result


def suggest_weights(
    organization: Organization,
    *,
    scorecard_version: ScorecardVersion,
    date_from: date,
    date_to: date,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> dict[str, Any]:
    """Suggested component weights for ``scorecard_version`` fitted on the closed renewals due in the window
    (synchronous; the same renewals and scores as a backtest of that window).

    Returns ``{suggested_definition, current_weights, suggested_weights, auc_current_holdout,
    auc_suggested_holdout, n_train, n_test, test_from, coefficients, method, skipped, version}``; weights are
    each component's share of the score in % when every component has data. Raises
    :class:`~renewals.analytics_backtest.SuggestionError` when the history cannot support a fit and
    :class:`ValidationError` for an impossible window.
    """
    check_window(date_from, date_to, horizon_days)
    definition = scorecard_version.definition
    data = backtest_data(organization, definition, date_from=date_from, date_to=date_to, horizon_days=horizon_days)
    out = suggest(definition, data.frame)
    out["skipped"] = data.skipped
    out["version"] = scorecard_version.number
    return out


class NoSuggestion(Exception):
    """The backtest has no suggested weights to apply (not finished, or the history could not support a fit)."""


@transaction.atomic
def apply_suggestion_as_draft(backtest: Backtest, *, user: Any) -> tuple[ScorecardVersion, bool]:
    """Put the suggested weights of a finished ``backtest`` into its scorecard's draft, for an admin to
    review (diff, preview, backtest) and publish; nothing the engine scores with changes.

    Creates the draft, or replaces the definition of the draft already open (one per scorecard). Returns
    ``(draft, created)``. Raises :class:`NoSuggestion` when the result holds no suggestion.
    """
    suggestion = (backtest.result or {}).get("suggestion") or {}
    definition = suggestion.get("suggested_definition")
    if not definition:
        raise NoSuggestion(suggestion.get("error") or "This backtest has no suggested weights (yet).")
    note = (
        f"Suggested weights from backtest #{backtest.pk} (v{backtest.scorecard_version.number}, renewals due "
        f"{backtest.date_from}–{backtest.date_to}): held-out AUC {suggestion.get('auc_current_holdout')} → "
        f"{suggestion.get('auc_suggested_holdout')}"
    )[:300]
    scorecard = backtest.scorecard
    try:
        return drafts.create_draft(scorecard, definition, user=user, note=note), True
    except drafts.DraftExists as exists:
        return drafts.update_draft(exists.draft, definition, user=user, note=note), False
