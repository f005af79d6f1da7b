"""The structured scorecard editor (admin page ``/o/<slug>/admin/scorecards/<id>/``): a scorecard
definition as editable rows of strings, and back.

The page round-trips an :class:`EditorState` (what the admin typed, kept verbatim so that a preview or
an error never loses input) through POST fields named like the JSON paths of
:func:`health.scoring.validate_definition` (``components-2-x100`` ↔ ``components.2.function.x100``).
:func:`definition_from_state` converts best-effort (a blank or non-numeric number stays as typed, so
the validator reports it at its path); :func:`attach_errors` maps every ``(path, message)`` back to
the row and field it belongs to. So the structured editor and the JSON view feed the same validation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.db import connection
from django.db.models import Case, CharField, Count, F, Sum, Value, When

__all__ = [
    "FUNCTION_LABELS",
    "SIGNAL_LABELS",
    "SIGNAL_UNITS",
    "BandsForm",
    "EditorState",
    "preview_bands",
    "apply_row_action",
    "attach_errors",
    "definition_from_state",
    "effective_weights",
    "known_usage_metrics",
    "state_from_definition",
    "state_from_post",
]

#: The builtin signals by their full names (the select of the signal column), each saying what it measures.
SIGNAL_LABELS: dict[str, str] = {
    "adoption": "Adoption: active users in the last 30 days ÷ licensed seats",
    "usage_trend": "Usage trend: % change of events, last 30 days vs the 30 before",
    "support": "Support: tickets opened in the last 90 days (open P1 tickets can cost points)",
    "nps": "Sentiment: Net Promoter Score of the responses of the last 180 days",
    "engagement": "Engagement: days since the last customer touch ÷ the touch model's cadence",
    "relationship": "Relationship: champion and executive sponsor coverage, key contact departures",
    "financial": "Financial: the most days overdue among unpaid invoices",
    "csm_pulse": "CSM pulse: the CSM's latest read (green, yellow or red), stale after 30 days",
}
#: The unit of each signal's value: what a scoring function's thresholds are written in.
SIGNAL_UNITS: dict[str, str] = {
    "adoption": "share of seats (0.25 = 25 % of seats active)",
    "usage_trend": "% change (−40 = events down 40 %)",
    "support": "tickets in 90 days",
    "nps": "NPS points (−100 to +100)",
    "engagement": "× the cadence (2 = twice as long as the cadence since the last touch)",
    "relationship": "category: both, one, none, departed",
    "financial": "days overdue",
    "csm_pulse": "colour: green, yellow, red",
    "usage": "the metric's total over 30 days",
}
USAGE = "usage"  # the select value standing for "usage metric…" (the metric name goes in its own input)

FUNCTION_LABELS: dict[str, str] = {
    "linear": "Linear",
    "bands": "Bands (thresholds)",
    "target_band": "Target band",
    "categorical": "Categories",
}
#: Labels a categorical builtin signal can take, offered as rows when a component switches to categories.
SIGNAL_CATEGORIES: dict[str, list[str]] = {
    "relationship": ["both", "one", "none", "departed"],
    "csm_pulse": ["green", "yellow", "red"],
}
TARGET_BAND_KEYS = ("low", "high", "lower_limit", "lower_limit_score", "upper_limit", "upper_limit_score")
SCALAR_KEYS = ("x0", "x100", "else", *TARGET_BAND_KEYS)
PENALTY_PER = "open_p1_tickets"
MAX_ROWS = 60  # components, groups, bands or categories: a ceiling on what a POST can make us build
MAX_METRICS = 500


@dataclass
class ComponentRow:
    """One component as typed: every value a string; ``bands``/``points`` are lists of row dicts."""

    name: str = ""
    key: str = ""
    group: str = ""
    signal: str = "adoption"
    metric: str = ""
    weight: str = "10"
    type: str = "linear"
    params: dict[str, str] = field(default_factory=dict)  # SCALAR_KEYS
    bands: list[dict[str, Any]] = field(default_factory=list)  # {"max", "score"}
    points: list[dict[str, Any]] = field(default_factory=list)  # {"label", "points"}
    penalty: str = ""
    stable_key: bool = False  # the key exists in the saved version: shown, not editable
    errors: dict[str, list[str]] = field(default_factory=dict)
    share: float | None = None  # effective weight, % (all components with data)
    summary: str = ""  # the function in words ("linear: 0.1 → 0, 0.6 → 100")
    group_known: bool = True  # False: the group is not in the groups table (kept as an option, flagged)
    signal_known: bool = True


@dataclass
class GroupRow:
    key: str = ""
    name: str = ""
    weight: str = "50"
    errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class EditorState:
    groups: list[GroupRow] = field(default_factory=list)
    components: list[ComponentRow] = field(default_factory=list)
    general_errors: list[str] = field(default_factory=list)


# --- Definition → state -----------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _category_order(signal: str, point: dict[str, str]) -> tuple:
    """Known labels in their natural order (``both, one, none, departed``), others by points, best first."""
    known = SIGNAL_CATEGORIES.get(signal, [])
    if point["label"] in known:
        return (0, known.index(point["label"]), 0.0, "")
    value = _number(point["points"])
    return (1, 0, -float(value) if isinstance(value, int | float) else 0.0, point["label"])


def state_from_definition(definition: Mapping[str, Any], stable_keys: set[str] | None = None) -> EditorState:
    """The editor rows of a (valid or not) definition; ``stable_keys`` are the keys of the saved version."""
    stable_keys = stable_keys or set()
    state = EditorState()
    for g in definition.get("groups") or []:
        if isinstance(g, dict):
            state.groups.append(
                GroupRow(key=_text(g.get("key")), name=_text(g.get("name")), weight=_text(g.get("weight")))
            )
    for c in definition.get("components") or []:
        if not isinstance(c, dict):
            continue
        signal = _text(c.get("signal"))
        metric = ""
        if signal.startswith("usage:"):
            signal, metric = USAGE, signal[len("usage:") :]
        function = c.get("function") if isinstance(c.get("function"), dict) else {}
        kind = _text(function.get("type")) or "linear"
        params = {k: _text(function.get(k)) for k in SCALAR_KEYS if k in function}
        bands = [
            {"max": _text(b.get("max")), "score": _text(b.get("score"))}
            for b in function.get("bands") or []
            if isinstance(b, dict)
        ]
        raw_points = function.get("points")
        points = (
            [{"label": str(k), "points": _text(v)} for k, v in raw_points.items()]
            if isinstance(raw_points, dict)
            else []
        )
        points.sort(key=lambda p: _category_order(signal, p))  # jsonb does not keep key order
        penalty = c.get("penalty") if isinstance(c.get("penalty"), dict) else {}
        key = _text(c.get("key"))
        state.components.append(
            ComponentRow(
                name=_text(c.get("name")),
                key=key,
                group=_text(c.get("group")),
                signal=signal,
                metric=metric,
                weight=_text(c.get("weight")),
                type=kind,
                params=params,
                bands=bands,
                points=points,
                penalty=_text(penalty.get("points")),
                stable_key=key in stable_keys,
            )
        )
    return state


# --- POST → state -------------------------------------------------------------------------------------


def _count(post: Mapping[str, Any], name: str) -> int:
    try:
        return max(0, min(int(post.get(name, 0)), MAX_ROWS))
    except (TypeError, ValueError):
        return 0


def state_from_post(post: Mapping[str, Any], stable_keys: set[str] | None = None) -> EditorState:
    """The rows as posted (``groups-TOTAL``, ``components-TOTAL``, ``components-<i>-bands-TOTAL``, …)."""
    stable_keys = stable_keys or set()
    state = EditorState()

    def get(name: str) -> str:
        return str(post.get(name, "")).strip()

    for i in range(_count(post, "groups-TOTAL")):
        p = f"groups-{i}-"
        state.groups.append(GroupRow(key=get(p + "key"), name=get(p + "name"), weight=get(p + "weight")))
    for i in range(_count(post, "components-TOTAL")):
        p = f"components-{i}-"
        key = get(p + "key")
        row = ComponentRow(
            name=get(p + "name"),
            key=key,
            group=get(p + "group"),
            signal=get(p + "signal"),
            metric=get(p + "metric"),
            weight=get(p + "weight"),
            type=get(p + "type") or "linear",
            params={k: get(p + k) for k in SCALAR_KEYS},
            bands=[
                {"max": get(f"{p}bands-{j}-max"), "score": get(f"{p}bands-{j}-score")}
                for j in range(_count(post, p + "bands-TOTAL"))
            ],
            points=[
                {"label": get(f"{p}points-{j}-label"), "points": get(f"{p}points-{j}-points")}
                for j in range(_count(post, p + "points-TOTAL"))
            ],
            penalty=get(p + "penalty"),
            stable_key=key in stable_keys,
        )
        state.components.append(row)
    return state


# --- Row actions (add / remove without JavaScript) ----------------------------------------------------


def apply_row_action(state: EditorState, action: str) -> bool:
    """Apply ``add-component``, ``remove-component-<i>``, ``add-group``, ``remove-group-<i>``,
    ``add-band-<i>``, ``remove-band-<i>-<j>``, ``add-point-<i>``, ``remove-point-<i>-<j>``.
    Returns whether ``action`` was a row action (the page is then shown again, nothing scored or saved)."""
    match = re.fullmatch(r"(add|remove)-(component|group|band|point)(?:-(\d+))?(?:-(\d+))?", action or "")
    if not match:
        return False
    verb, what, i, j = match.group(1), match.group(2), match.group(3), match.group(4)
    i = int(i) if i is not None else None
    j = int(j) if j is not None else None

    def at(rows: list, index: int | None) -> Any:
        return rows[index] if index is not None and 0 <= index < len(rows) else None

    if what == "component":
        if verb == "add" and len(state.components) < MAX_ROWS:
            state.components.append(ComponentRow(params={"x0": "0", "x100": "100"}))
        elif verb == "remove" and at(state.components, i) is not None:
            del state.components[i]
    elif what == "group":
        if verb == "add" and len(state.groups) < MAX_ROWS:
            state.groups.append(GroupRow())
        elif verb == "remove" and at(state.groups, i) is not None:
            removed = state.groups.pop(i)
            for c in state.components:  # its components become ungrouped rather than dangling
                if removed.key and c.group == removed.key:
                    c.group = ""
    else:
        row = at(state.components, i)
        if row is None:
            return True
        rows = row.bands if what == "band" else row.points
        if verb == "add" and len(rows) < MAX_ROWS:
            if what == "band":
                rows.append({"max": "", "score": ""})
            else:
                taken = {r["label"] for r in rows}
                label = next((x for x in SIGNAL_CATEGORIES.get(row.signal, []) if x not in taken), "")
                rows.append({"label": label, "points": ""})
        elif verb == "remove" and at(rows, j) is not None:
            del rows[j]
    return True


# --- State → definition ---------------------------------------------------------------------------------


def _number(raw: str) -> Any:
    """``"25"`` → 25, ``"0.1"`` → 0.1; blank → ``None`` and anything else stays a string, so that the
    validator reports "must be a number" at the field's path."""
    text = raw.strip().replace(",", ".") if isinstance(raw, str) else raw
    if text in ("", None):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return raw
    if not value.is_finite():
        return raw
    return (
        int(value)
        if value == value.to_integral_value() and "." not in text and "e" not in text.lower()
        else float(value)
    )


def slug_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:60] or "component"


def _fill_keys(state: EditorState) -> None:
    """New rows get a key from their name (unique within the definition); saved keys never change."""
    taken = {g.key for g in state.groups if g.key}
    for g in state.groups:
        if not g.key and g.name:
            base = slug_key(g.name)
            key, n = base, 2
            while key in taken:
                key, n = f"{base}_{n}", n + 1
            g.key = key
            taken.add(key)
    taken = {c.key for c in state.components if c.key}
    for c in state.components:
        if not c.key and c.name:
            base = slug_key(c.name)
            key, n = base, 2
            while key in taken:
                key, n = f"{base}_{n}", n + 1
            c.key = key
            taken.add(key)


def definition_from_state(state: EditorState) -> dict[str, Any]:
    """The definition the rows describe (only the parameters of each row's chosen function type).
    Fills missing keys of new rows in ``state`` as a side effect, so the page shows them."""
    _fill_keys(state)
    groups = [{"key": g.key, "name": g.name or g.key, "weight": _number(g.weight)} for g in state.groups]
    components = []
    for c in state.components:
        signal = f"usage:{c.metric}" if c.signal == USAGE else c.signal
        function: dict[str, Any] = {"type": c.type}
        if c.type == "linear":
            function.update({k: _number(c.params.get(k, "")) for k in ("x0", "x100")})
        elif c.type == "bands":
            function["bands"] = [{"max": _number(b["max"]), "score": _number(b["score"])} for b in c.bands]
            function["else"] = _number(c.params.get("else", ""))
        elif c.type == "target_band":
            function.update({k: _number(c.params.get(k, "")) for k in TARGET_BAND_KEYS})
        elif c.type == "categorical":
            function["points"] = {p["label"]: _number(p["points"]) for p in c.points if p["label"] or p["points"]}
        component: dict[str, Any] = {
            "key": c.key,
            "name": c.name or c.key,
            "group": c.group or None,
            "signal": signal,
            "weight": _number(c.weight),
            "function": function,
        }
        if c.penalty:
            component["penalty"] = {"per": PENALTY_PER, "points": _number(c.penalty)}
        components.append(component)
    return {"groups": groups, "components": components}


# --- Errors → rows --------------------------------------------------------------------------------------


def attach_errors(state: EditorState, errors: list[tuple[str, str]]) -> None:
    """Put every validator ``(path, message)`` on the row field it names; what names no field goes to
    ``general_errors`` (with its path)."""
    for path, message in errors:
        parts = path.split(".")
        placed = False
        if parts[0] == "groups" and len(parts) >= 2 and parts[1].isdigit() and int(parts[1]) < len(state.groups):
            target = parts[2] if len(parts) > 2 else "name"
            state.groups[int(parts[1])].errors.setdefault(target, []).append(message)
            placed = True
        elif (
            parts[0] == "components"
            and len(parts) >= 2
            and parts[1].isdigit()
            and int(parts[1]) < len(state.components)
        ):
            row = state.components[int(parts[1])]
            rest = parts[2:]
            placed = True
            if not rest:
                row.errors.setdefault("name", []).append(message)
            elif rest[0] == "signal":
                row.errors.setdefault("metric" if row.signal == USAGE else "signal", []).append(message)
            elif rest[0] == "penalty":
                row.errors.setdefault("penalty", []).append(message)
            elif rest[0] != "function":
                row.errors.setdefault(rest[0], []).append(message)
            elif len(rest) == 1:
                row.errors.setdefault("type", []).append(message)
            elif rest[1] == "bands" and len(rest) >= 3 and rest[2].isdigit() and int(rest[2]) < len(row.bands):
                band = row.bands[int(rest[2])]
                band.setdefault("errors", {}).setdefault(rest[3] if len(rest) > 3 else "max", []).append(message)
            elif rest[1] == "points" and len(rest) >= 3:
                label = ".".join(rest[2:])  # a label may itself contain dots
                point = next((p for p in row.points if p["label"] == label), None)
                if point is None:
                    row.errors.setdefault("points", []).append(message)
                else:
                    point.setdefault("errors", {}).setdefault("points", []).append(message)
            else:
                row.errors.setdefault(rest[1], []).append(message)
        if not placed:
            state.general_errors.append(f"{path}: {message}")


# --- Effective weights -----------------------------------------------------------------------------------


def effective_weights(state: EditorState) -> None:
    """Each row's effective weight in % when every component has data (the two-level rule of
    ``health.scoring``): a group's weight is split among its components by their weights. Rows with a
    weight that is not a number show no share."""

    def weight(raw: str) -> float | None:
        value = _number(raw)
        return float(value) if isinstance(value, int | float) and value >= 0 else None

    group_weight = {g.key: weight(g.weight) or 0.0 for g in state.groups if g.key}
    for c in state.components:
        c.group_known = not c.group or c.group in group_weight
        c.signal_known = c.signal in SIGNAL_LABELS or c.signal == USAGE
    members: dict[str, float] = {}
    top = 0.0
    for c in state.components:
        w = weight(c.weight)
        if w is None:
            continue
        if c.group:
            members[c.group] = members.get(c.group, 0.0) + w
        else:
            top += w
    top += sum(group_weight.get(g, 0.0) for g, total in members.items() if total > 0)
    for c in state.components:
        w = weight(c.weight)
        if w is None or top <= 0:
            c.share = None
        elif c.group:
            inner = members.get(c.group, 0.0)
            c.share = (group_weight.get(c.group, 0.0) / top) * (w / inner) * 100 if inner > 0 else 0.0
        else:
            c.share = w / top * 100


# --- Known usage metrics ----------------------------------------------------------------------------------


def known_usage_metrics(organization_id: int) -> list[str]:
    """The organization's distinct ``UsageMetric.metric`` names, in one query. A recursive CTE walks
    the ``(organization, metric, date)`` index one distinct name at a time (a "loose index scan"), so it
    costs one index probe per name rather than a scan of every daily row; portable to SQLite."""
    from .models import UsageMetric

    table = connection.ops.quote_name(UsageMetric._meta.db_table)
    sql = f"""
        WITH RECURSIVE names(metric) AS (
            SELECT MIN(metric) FROM {table} WHERE organization_id = %s
            UNION ALL
            SELECT (SELECT MIN(metric) FROM {table} WHERE organization_id = %s AND metric > names.metric)
            FROM names WHERE names.metric IS NOT NULL
        )
        SELECT metric FROM names WHERE metric IS NOT NULL LIMIT {MAX_METRICS}
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [organization_id, organization_id])
        return [row[0] for row in cursor.fetchall()]


# --- The organization's colour bands (spec §3: red < 50 ≤ yellow < 75 ≤ green, editable) ---------------


class BandsForm(forms.Form):
    """The organization's colour bands: the score where yellow starts and the score where green starts."""

    yellow = forms.DecimalField(
        label="Yellow from (score)", min_value=0, max_value=100, decimal_places=1, max_digits=4,
        help_text="Scores below this are red.",
    )  # fmt: skip
    green = forms.DecimalField(
        label="Green from (score)", min_value=0, max_value=100, decimal_places=1, max_digits=4,
        help_text="Scores from this up are green.",
    )  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        yellow, green = data.get("yellow"), data.get("green")
        if yellow is not None and green is not None and not 0 < yellow < green:
            self.add_error("green", "Green must start above yellow, and yellow above 0.")
        return data


def _color_case(yellow: float, green: float) -> Case:
    return Case(
        When(score__lt=yellow, then=Value("red")),
        When(score__lt=green, then=Value("yellow")),
        default=Value("green"),
        output_field=CharField(),
    )


def preview_bands(organization: Any, yellow: float, green: float) -> dict[str, Any]:
    """What new colour bands would do, without saving, in :func:`health.services.preview_scorecard`'s
    shape: live accounts' current scores coloured with the current bands (their stored computed colour)
    and with ``yellow``/``green``; the moves between colours with their accounts and ARR, and the 20
    largest accounts changing. Two queries (the grouped moves, the examples), whatever the book size."""
    from .models import HealthScore

    scores = (
        HealthScore.objects.for_org(organization)
        .filter(score__isnull=False, account__churned_at__isnull=True)
        .annotate(new_color=_color_case(yellow, green))
    )
    changing = scores.exclude(new_color=F("computed_color"))
    moves = list(
        scores.values("computed_color", "new_color")
        .annotate(accounts=Count("id"), arr=Sum("account__arr"))
        .order_by("computed_color", "new_color")
    )
    changes = [
        {"from": m["computed_color"] or None, "to": m["new_color"], "accounts": m["accounts"],
         "arr": str((m["arr"] or Decimal(0)).quantize(Decimal("0.01")))}
        for m in moves if m["computed_color"] != m["new_color"]
    ]  # fmt: skip
    largest = changing.select_related("account").order_by(F("account__arr").desc(nulls_last=True), "account__name")
    examples = [
        {"account_id": h.account_id, "name": h.account.name, "from": h.computed_color or None, "to": h.new_color,
         "score_before": h.score, "score_after": h.score}
        for h in largest[:20]
    ]  # fmt: skip
    return {
        "accounts_scored": sum(m["accounts"] for m in moves),
        "accounts_changing": sum(c["accounts"] for c in changes),
        "arr_changing": str(sum((Decimal(c["arr"]) for c in changes), Decimal("0.00"))),
        "changes": changes,
        "examples": examples,
        "bands": {"yellow": float(yellow), "green": float(green)},
    }
