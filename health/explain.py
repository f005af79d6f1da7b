"""Why an account has its health score (spec §3 "Explanations", §8 ``/api/v1/accounts/{id}/health/``).

:func:`explain` reads the stored snapshots only (never the raw signals), in a constant number of
queries: the latest score with its override (1) and the last 90 days of snapshots with their
scorecard versions (1).

- ``components``: the newest snapshot's components (``signal`` names the signal, ``value`` is what it
  measured, e.g. an adoption ratio of 0.42). ``weight`` is the effective share after
  missing-data redistribution (scored weights sum to 1), ``contribution = weight × score``. Both are
  rounded (weights to 4 places, contributions to 2) and the rounding residue is put on the largest
  term, so that weights sum to exactly 1 and contributions to exactly ``score``.
- ``dragging``: the scored component that costs the most points, i.e. the largest
  ``weight × (100 − score)`` ("lost points"); ``null`` when nothing is lost. A heavy component at 60
  drags more than a light one at 0, which is what a CSM should work on first.
- ``changes``: each component's score now against the newest snapshot at least 7 days older, sorted
  by the size of the move (largest first; moves to or from "no data" last), plus one entry of
  ``type`` ``scorecard_version`` when the scorecard version differs between the two snapshots.
- ``history``: ``[{"date", "score", "color"}]`` for the last 90 days (computed colour, oldest first).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace
from typing import Any

from django.db.models import JSONField, OuterRef, Subquery
from django.utils import timezone

from accounts.models import Account

from .models import HealthOverride, HealthScore, HealthSnapshot

__all__ = ["HISTORY_DAYS", "dragging_by_account", "explain", "override_data", "override_is_active"]

HISTORY_DAYS = 90
CHANGE_WINDOW_DAYS = 7
WEIGHT_PLACES = Decimal("0.0001")
CONTRIBUTION_PLACES = Decimal("0.01")


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def override_is_active(override: HealthOverride | None, now: dt.datetime | None = None) -> bool:
    """Not cleared and not expired."""
    if override is None:
        return False
    now = now or timezone.now()
    return override.cleared_at is None and override.expires_at > now


def override_data(override: HealthOverride) -> dict[str, Any]:
    """The public shape of an override (API and pages)."""
    author = override.author
    return {
        "id": override.pk,
        "color": override.color,
        "reason_code": override.reason_code,
        "reason": override.reason,
        "author": (author.get_full_name() or author.email) if author else None,
        "created_at": override.created_at,
        "expires_at": override.expires_at,
        "computed_score_at_creation": _num(override.computed_score_at_creation),
        "cleared_at": override.cleared_at,
    }


def _balanced(values: list[Decimal], total: Decimal, places: Decimal) -> list[Decimal]:
    """Round every value to ``places`` and put the residue on the largest, so the sum is ``total``."""
    rounded = [v.quantize(places, rounding=ROUND_HALF_UP) for v in values]
    if rounded:
        largest = max(range(len(values)), key=lambda i: abs(values[i]))
        rounded[largest] += total - sum(rounded)
    return rounded


def _components(snapshot: HealthSnapshot | None) -> list[dict[str, Any]]:
    if snapshot is None:
        return []
    rows = [c for c in (snapshot.components or []) if isinstance(c, dict)]
    score = _dec(snapshot.score)
    scored = [i for i, c in enumerate(rows) if _dec(c.get("score")) is not None and _dec(c.get("weight"))]
    weights = [_dec(rows[i]["weight"]) or Decimal(0) for i in scored]
    weight_total = sum(weights, Decimal(0))
    # Effective shares: stored shares already sum to 1; renormalise anyway (a scorecard stored raw weights).
    shares = [w / weight_total for w in weights] if weight_total else []
    shares = _balanced(shares, Decimal(1), WEIGHT_PLACES) if shares else []
    contributions = [shares[k] * _dec(rows[i]["score"]) for k, i in enumerate(scored)]  # type: ignore[operator]
    if score is not None and contributions:
        contributions = _balanced(contributions, score, CONTRIBUTION_PLACES)
    by_index = {i: (shares[k], contributions[k]) for k, i in enumerate(scored)}
    out = []
    for i, c in enumerate(rows):
        share, contribution = by_index.get(i, (None, None))
        out.append(
            {
                "key": c.get("key"),
                "name": c.get("name") or c.get("key"),
                "group": c.get("group"),
                "signal": c.get("signal"),
                "value": c.get("value"),
                "score": _num(_dec(c.get("score"))),
                "weight": _num(share) if share is not None else 0.0,
                "contribution": _num(contribution),
            }
        )
    return out


def _dragging(components: list[dict[str, Any]]) -> dict[str, Any] | None:
    best: tuple[float, dict[str, Any]] | None = None
    for c in components:
        if c["score"] is None or not c["weight"]:
            continue
        lost = c["weight"] * (100 - c["score"])
        if lost > 0 and (best is None or lost > best[0]):
            best = (lost, c)
    if best is None:
        return None
    lost, c = best
    return {**c, "lost_points": round(lost, 2)}


def _version(snapshot: HealthSnapshot | None) -> dict[str, Any] | None:
    version = getattr(snapshot, "scorecard_version", None)
    if version is None:
        return None
    return {"id": version.pk, "scorecard": version.scorecard_id, "number": version.number}


def _changes(now: HealthSnapshot | None, before: HealthSnapshot | None) -> list[dict[str, Any]]:
    if now is None or before is None:
        return []
    old = {c.get("key"): c for c in before.components or [] if isinstance(c, dict)}
    moves, unknown = [], []
    for c in now.components or []:
        if not isinstance(c, dict):
            continue
        prior = old.get(c.get("key"))
        if prior is None:
            continue
        was, is_ = _dec(prior.get("score")), _dec(c.get("score"))
        if was == is_:
            continue
        entry = {
            "type": "component",
            "key": c.get("key"),
            "name": c.get("name") or c.get("key"),
            "from": _num(was),
            "to": _num(is_),
            "delta": _num(is_ - was) if was is not None and is_ is not None else None,
        }
        (moves if entry["delta"] is not None else unknown).append(entry)
    moves.sort(key=lambda e: (-abs(e["delta"]), e["key"] or ""))
    changes = moves + sorted(unknown, key=lambda e: e["key"] or "")
    if now.scorecard_version_id != before.scorecard_version_id:
        was_v, is_v = _version(before), _version(now)
        changes.insert(
            0,
            {
                "type": "scorecard_version",
                "key": "scorecard_version",
                "name": "Scorecard version",
                "from": was_v["number"] if was_v else None,
                "to": is_v["number"] if is_v else None,
                "from_version": was_v,
                "to_version": is_v,
                "delta": None,
            },
        )
    return changes


def explain(account: Account, *, today: dt.date | None = None) -> dict[str, Any]:
    """The account's health and why, in the exact shape of ``/api/v1/accounts/{id}/health/``.

    Two queries whatever the history holds. An account never scored answers ``score: null`` with
    empty lists.
    """
    today = today or timezone.localdate()
    org_id = account.organization_id
    health = (
        HealthScore.all_orgs.filter(organization_id=org_id, account_id=account.pk)
        .select_related("override__author", "scorecard_version")
        .first()
    )
    snapshots = list(
        HealthSnapshot.all_orgs.filter(
            organization_id=org_id,
            account_id=account.pk,
            date__gt=today - dt.timedelta(days=HISTORY_DAYS),
            date__lte=today,
        )
        .select_related("scorecard_version")
        .order_by("date")
    )
    latest = snapshots[-1] if snapshots else None
    week_before = None
    if latest is not None:
        cutoff = latest.date - dt.timedelta(days=CHANGE_WINDOW_DAYS)
        older = [s for s in snapshots if s.date <= cutoff]
        week_before = older[-1] if older else None

    override = health.override if health is not None and override_is_active(health.override) else None
    if health is not None:
        score, computed_color, computed_at = _dec(health.score), health.computed_color, health.computed_at
        version = (
            {
                "id": health.scorecard_version.pk,
                "scorecard": health.scorecard_version.scorecard_id,
                "number": health.scorecard_version.number,
            }
            if health.scorecard_version is not None
            else _version(latest)
        )
    elif latest is not None:
        score, computed_color, computed_at, version = (
            _dec(latest.score),
            latest.color,
            latest.computed_at,
            _version(latest),
        )
    else:
        score, computed_color, computed_at, version = None, "", None, None
    # Every recompute writes the day's snapshot and the latest score together: the newest snapshot holds
    # the components that produced ``score``.
    source = latest
    components = _components(source)
    effective = override.color if override is not None else (computed_color or None)
    return {
        "account": account.pk,
        "score": _num(score),
        "color": effective,
        "computed_color": computed_color or None,
        "computed_at": computed_at,
        "scorecard_version": version,
        "override": override_data(override) if override is not None else None,
        "components": [
            {k: c[k] for k in ("key", "name", "signal", "value", "score", "weight", "contribution")} for c in components
        ],
        "missing": list(source.missing or []) if source is not None else [],
        "changes": _changes(source, week_before),
        "changes_since": week_before.date if week_before is not None and source is not None else None,
        "dragging": _dragging(components),
        "history": [{"date": s.date, "score": _num(_dec(s.score)), "color": s.color or None} for s in snapshots],
    }


def dragging_by_account(organization_id: int, account_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """For each account, the component dragging its current score down most (:func:`_dragging` over the
    newest snapshot's components): ``{account id: {"key", "name", "score", "weight", "lost_points"}}``;
    accounts without a score or with nothing lost are absent. One query (each score row with its newest
    snapshot's components, a correlated subquery on the ``(organization, account, date)`` key)."""
    ids = list(account_ids)
    if not ids:
        return {}
    newest = HealthSnapshot.all_orgs.filter(
        organization_id=organization_id, account_id=OuterRef("account_id")
    ).order_by("-date")
    rows = (
        HealthScore.all_orgs.filter(organization_id=organization_id, account_id__in=ids, score__isnull=False)
        .annotate(snapshot_components=Subquery(newest.values("components")[:1], output_field=JSONField()))
        .values_list("account_id", "score", "snapshot_components")
    )
    out: dict[int, dict[str, Any]] = {}
    for account_id, score, components in rows:
        if isinstance(components, str):  # some backends hand a subquery's JSON back as text
            components = json.loads(components)
        snapshot = SimpleNamespace(components=components or [], score=score)
        dragging = _dragging(_components(snapshot))  # type: ignore[arg-type]
        if dragging is not None:
            out[account_id] = {k: dragging[k] for k in ("key", "name", "score", "weight", "lost_points")}
    return out
