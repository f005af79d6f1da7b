"""Health pages: the Portfolio (``/o/<slug>/portfolio/``), the scorecard editor and key features (admin)."""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.choices import Role
from cs_platform.pages import org_page

from .filtersets import local_today
from .forms import KeyFeatureForm, OverrideForm, PulseForm
from .models import (
    CsmPulse,
    EventType,
    HealthOverride,
    KeyFeature,
    OverrideReason,
    PulseReason,
    Scorecard,
    ScorecardVersion,
    UsageEvent,
)

admin_page = org_page(roles=[Role.ADMIN])
SEEN_DAYS = 30
MAX_NAMES = 300  # the page lists the busiest names; any other can still be flagged by typing it


def _seen_events(since) -> list[dict]:
    """Track event names seen since ``since``, busiest first: one grouped query."""
    return list(
        UsageEvent.objects.filter(type=EventType.TRACK, timestamp__gte=since)
        .exclude(event="")
        .values("event")
        .annotate(volume=Count("id"), accounts=Count("account", distinct=True))
        .order_by("-volume", "event")[:MAX_NAMES]
    )


@admin_page
@require_http_methods(["GET", "POST"])
def admin_key_features(request: HttpRequest) -> HttpResponse:
    """Event names seen in the last 30 days with their volume; flag one as a key feature (with a label)."""
    form = KeyFeatureForm()
    status = 200
    if request.method == "POST":
        form = KeyFeatureForm(request.POST)
        if form.is_valid():
            try:
                with transaction.atomic():
                    feature = KeyFeature.objects.create(
                        event_name=form.cleaned_data["event_name"], label=form.cleaned_data["label"]
                    )
            except IntegrityError:  # flagged by someone else between the check and the insert
                form.add_error("event_name", f"“{form.cleaned_data['event_name']}” is already flagged.")
            else:
                messages.success(
                    request,
                    f"“{feature.label}” is a key feature. Daily feature_users:{feature.event_name} counts start "
                    "with the next rollup; past days already rolled up are not recomputed.",
                )
                return redirect("admin-key-features", org_slug=request.organization.slug)
        status = 400
    features = {f.event_name: f for f in KeyFeature.objects.order_by("label", "event_name")}
    seen = _seen_events(timezone.now() - timedelta(days=SEEN_DAYS))
    rows = [{**row, "feature": features.get(row["event"])} for row in seen]
    seen_names = {row["event"] for row in seen}
    # Flagged names with no event in the window are listed too, so they can be unflagged.
    rows += [
        {"event": name, "volume": 0, "accounts": 0, "feature": f}
        for name, f in features.items()
        if name not in seen_names
    ]
    context = {
        "rows": rows,
        "features": list(features.values()),
        "form": form,
        "seen_days": SEEN_DAYS,
        "admin_tab": "features",
        "org": request.organization,
    }
    return render(request, "health/key_features.html", context, status=status)


@admin_page
@require_POST
def admin_unflag_key_feature(request: HttpRequest, feature_id: int) -> HttpResponse:
    """Stop computing a key feature; the daily rows already written are kept."""
    feature = get_object_or_404(KeyFeature.objects, pk=feature_id)
    feature.delete()
    messages.success(request, f"“{feature.label}” is no longer a key feature. Its past daily counts are kept.")
    return redirect("admin-key-features", org_slug=request.organization.slug)


# --- Portfolio (spec §7 screen 3) -------------------------------------------------------------------


def _split_parts(split: dict, what: str = "counts", currency: str = "USD") -> list[tuple[str, float, str, str]]:
    """``(colour, value, tooltip, short label)`` per colour of a split, for :func:`health.charts.split_bar`."""
    from accounts.templatetags.retain_ui import money, money_short

    values = split["counts"] if what == "counts" else split["arr_by_color"]
    parts = []
    for c in ("red", "yellow", "green", "unscored"):
        if what == "counts":
            parts.append((c, float(values[c]), f"{values[c]} {c}", str(values[c])))
        else:
            n = split["counts"][c]
            tip = f"{c}: {money(values[c], currency)} ARR in {n} account{'s' if n != 1 else ''}"
            parts.append((c, float(values[c]), tip, money_short(values[c], currency)))
    return parts


#: ``?csm_sort=`` of the Portfolio's By CSM table: key → (sort key of a row, biggest first?).
CSM_SORTS = {
    "name": (lambda o, cap: (o["owner"] is None, (o["name"] or "").lower()), False),
    "accounts": (lambda o, cap: o["accounts"], True),
    "arr": (lambda o, cap: o["arr"], True),
    "at_risk": (lambda o, cap: o["arr_by_color"]["red"], True),
    "red": (lambda o, cap: o["counts"]["red"], True),
    "load": (lambda o, cap: -1.0 if cap is None or cap["load"] is None else cap["load"], True),
}


@org_page()
@require_GET
def portfolio(request: HttpRequest) -> HttpResponse:
    """The leader's view: colours by count and ARR, ARR at risk, split by segment and by CSM, the 90-day
    colour trend, the biggest 7-day drops and CSM capacity. Every member may read it (CSMs compare their
    book with the team's). A fixed number of queries whatever the number of accounts: one scan of the
    accounts feeds the tiles, segments, owners, today's trend point and capacity (``health.portfolio``)."""
    from accounts.composition import page_context, page_panels
    from accounts.services import capacity_by_csm

    from .charts import band_labels, split_bar, trend_area
    from .portfolio import biggest_movers, color_trend, portfolio_rows

    org = request.organization
    rows = portfolio_rows(org)
    for entry in [*rows["by_segment"], *rows["by_owner"]]:
        entry["bar"] = split_bar(_split_parts(entry))
        entry["arr_bar"] = split_bar(_split_parts(entry, "arr", org.currency))
    overall = rows["overall"]
    scored = overall["accounts"] - overall["unscored"]
    tiles = []
    for color in ("red", "yellow", "green"):
        n, arr = overall["counts"][color], overall["arr_by_color"][color]
        tiles.append(
            {
                "color": color,
                "count": n,
                "arr": arr,
                "share": (n / scored * 100) if scored else 0,
                "arr_share": (arr / overall["arr"] * 100) if overall["arr"] else 0,
            }
        )
    trend = color_trend(org, today_counts=rows["computed_today"])
    capacity = {c["owner_id"]: c for c in capacity_by_csm(org, rows["capacity_rows"])}
    csm_sort = request.GET.get("csm_sort", "-at_risk")
    sort_key = csm_sort.lstrip("-")
    if sort_key not in CSM_SORTS:
        csm_sort, sort_key = "-at_risk", "at_risk"
    key, _ = CSM_SORTS[sort_key]
    by_owner = sorted(rows["by_owner"], key=lambda o: (o["owner"] is None, (o["name"] or "").lower()))
    by_owner.sort(key=lambda o: key(o, capacity.get(o["owner"])), reverse=csm_sort.startswith("-"))
    bands = band_labels(org.health_bands)
    context = {
        "overall": overall,
        "tiles": tiles,
        "bands": bands,
        "overall_bar": split_bar(_split_parts(overall), width=480, height=22, numbered=True),
        "overall_arr_bar": split_bar(_split_parts(overall, "arr", org.currency), width=480, height=22, numbered=True),
        "by_segment": rows["by_segment"],
        "by_owner": by_owner,
        "csm_sort": csm_sort,
        "csm_columns": [
            ("name", "Owner", False),
            ("accounts", "Accounts", True),
            (None, "Split", False),
            ("red", bands["red"], True),
            (None, bands["yellow"], True),
            (None, bands["green"], True),
            (None, "Unscored", True),
            ("arr", "ARR", True),
            ("at_risk", "ARR at risk", True),
            ("load", "Capacity", False),
        ],  # fmt: skip
        "trend_chart": trend_area(trend, bands=org.health_bands),
        # The span the chart covers, not its number of points: days without snapshots leave gaps.
        "trend_days": (trend[-1]["date"] - trend[0]["date"]).days + 1 if trend else 0,
        "movers": biggest_movers(org),
        "capacity": capacity,
        # What other apps add (accounts.composition: value's onboarding section), after the health figures.
        "page_panels": page_panels("portfolio"),
        **page_context("portfolio", request),
    }
    return render(request, "health/portfolio.html", context)


# --- Account 360 health panel ---------------------------------------------------------------------

OVERRIDE_TRAIL_LIMIT = 20
PULSE_LIMIT = 5


def health_summary(request: HttpRequest, account) -> dict:
    """The account's health and why, with each component's evidence in the customer's terms: what the
    Account 360 panel and the renewal page (beside the forecast form) both show. The explanation (2
    queries) and one query per signal source the scorecard reads."""
    from .charts import band_labels
    from .evidence import evidence
    from .explain import explain

    today = local_today(request.organization)
    health = explain(account, today=today)
    components = health["components"]
    top = max((c["contribution"] or 0 for c in components), default=0) or 1
    for c in components:
        c["bar"] = int(round(100 * (c["contribution"] or 0) / top)) if c["contribution"] is not None else 0
        c["lost"] = round(c["weight"] * (100 - c["score"]), 1) if c["score"] is not None else None
    # The facts behind each component, as of the day the score was computed (its newest snapshot).
    as_of = health["history"][-1]["date"] if health["history"] else today
    facts = evidence(account, components, as_of=as_of) if components else {}
    for c in components:
        c["evidence"] = facts.get(c["key"])
    if health["dragging"] is not None:
        health["dragging"]["evidence"] = facts.get(health["dragging"]["key"])
    names = {c["key"]: c["name"] for c in components}
    return {
        "health": health,
        "health_bands": band_labels(request.organization.health_bands),
        "missing_names": [names.get(key, key) for key in health["missing"]],
    }


def health_panel_context(
    request: HttpRequest, account, *, override_form: OverrideForm | None = None, pulse_form: PulseForm | None = None
) -> dict:
    """What the Account 360 health panel shows: :func:`health_summary` (the explanation and its evidence),
    the 90-day chart with the organization's colour bands, the override trail and recent pulses (1 query
    each), and the forms for whoever may write the account."""
    from .charts import score_line
    from .drafts import scorecard_changes
    from .overrides import can_override

    summary = health_summary(request, account)
    history = summary["health"]["history"]
    changes = (
        scorecard_changes(account, since=history[0]["date"], until=local_today(request.organization)) if history else []
    )
    for number, change in enumerate(changes, start=1):
        change["number"] = number
    by_day = {c["date"]: c for c in changes}
    history_rows = [{**h, "change": by_day.get(h["date"])} for h in history]
    seen = {h["date"] for h in history}
    history_rows += [
        {"date": c["date"], "score": None, "color": None, "change": c} for c in changes if c["date"] not in seen
    ]
    history_rows.sort(key=lambda row: row["date"], reverse=True)
    # A churned account has no score to override and no CSM read to give: no forms (the trail stays).
    churned = account.churned_at is not None or account.lifecycle_stage == "churned"
    allowed = can_override(request.actor, account) and not churned
    return summary | {
        "health_chart": score_line(history, request.organization.health_bands, markers=changes),
        "scorecard_changes": changes,
        "history_rows": history_rows,
        "override_trail": list(
            HealthOverride.objects.filter(account=account).select_related("author", "cleared_by")[:OVERRIDE_TRAIL_LIMIT]
        ),
        "pulses": list(CsmPulse.objects.filter(account=account).select_related("author")[:PULSE_LIMIT]),
        "can_override": allowed,
        "override_form": (override_form or OverrideForm()) if allowed else None,
        "pulse_form": (pulse_form or PulseForm()) if allowed else None,
        "pulse_reasons": dict(PulseReason.choices),
        "override_reasons": dict(OverrideReason.choices),
        "now": timezone.now(),
    }


def _account_page(request: HttpRequest, account, *, status: int = 200, **forms_) -> HttpResponse:
    from accounts.views import _account_context

    context = _account_context(request, account)
    if forms_:
        context.update(health_panel_context(request, account, **forms_))
    return render(request, "accounts/account_detail.html", context, status=status)


def _back(request: HttpRequest, account) -> HttpResponse:
    return redirect(reverse("account-detail", args=[request.organization.slug, account.pk]) + "#health")


def _form_errors(form, exc: ValidationError) -> None:
    for field, messages_ in exc.message_dict.items():
        target = field if field in form.fields else ("expires_on" if field == "expires_at" else None)
        for message in messages_:
            form.add_error(target, message)


@org_page()
@require_POST
def account_override(request: HttpRequest, account_id: int) -> HttpResponse:
    """Set a colour override from the Account 360 (PRG; the page again with errors when invalid)."""
    from accounts.views import _get_account

    from .overrides import set_override

    account = _get_account(account_id)
    form = OverrideForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        expires = None
        if data.get("expires_on"):
            zone = ZoneInfo(request.organization.time_zone or "UTC")
            expires = dt.datetime.combine(data["expires_on"], dt.time(23, 59), tzinfo=zone)
        try:
            override = set_override(
                account,
                color=data["color"],
                reason_code=data["reason_code"],
                reason=data["reason"],
                author=request.actor,
                expires_at=expires,
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Health overridden to {override.color} until {override.expires_at:%b %-d, %Y}.")
            return _back(request, account)
    return _account_page(request, account, status=400, override_form=form)


@org_page()
@require_POST
def account_clear_override(request: HttpRequest, account_id: int, override_id: int) -> HttpResponse:
    """Clear an override (it stays in the trail)."""
    from accounts.views import _get_account

    from .overrides import clear_override

    account = _get_account(account_id)
    override = get_object_or_404(HealthOverride.objects.select_related("account"), pk=override_id, account=account)
    clear_override(override, by=request.actor)
    messages.success(request, "Override cleared: the computed colour applies again.")
    return _back(request, account)


@org_page()
@require_POST
def account_pulse(request: HttpRequest, account_id: int) -> HttpResponse:
    """Record a CSM pulse from the Account 360."""
    from accounts.views import _get_account

    from .overrides import record_pulse

    account = _get_account(account_id)
    form = PulseForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            record_pulse(
                account, color=data["color"], reason_codes=data["reason_codes"], note=data["note"], author=request.actor
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Pulse recorded; the health score is recomputed shortly.")
            return _back(request, account)
    return _account_page(request, account, status=400, pulse_form=form)


# --- Admin: scorecard editor (spec §7 screen 7) ---------------------------------------------------


def _function_summary(function: dict) -> str:
    """A one-line reading of a scoring function for the structured table."""
    kind = function.get("type")
    if kind == "linear":
        return f"linear: {function.get('x0')} → 0, {function.get('x100')} → 100"
    if kind == "bands":
        bands = ", ".join(f"≤{b.get('max')} → {b.get('score')}" for b in function.get("bands", []))
        return f"bands: {bands}, else {function.get('else', 0)}"
    if kind == "target_band":
        return (
            f"target band {function.get('low')}–{function.get('high')} → 100; "
            f"{function.get('lower_limit')} → {function.get('lower_limit_score', 0)}, "
            f"{function.get('upper_limit')} → {function.get('upper_limit_score', 0)}"
        )
    if kind == "categorical":
        return "categorical: " + ", ".join(f"{k} {v}" for k, v in (function.get("points") or {}).items())
    return str(kind)


def _start_definition() -> tuple[dict, str]:
    """What a new scorecard starts from: a copy of the default scorecard's current definition."""
    import copy

    from .defaults import DEFAULT_SCORECARD

    default = Scorecard.objects.filter(is_default=True).select_related("current_version").first()
    if default and default.current_version_id:
        return copy.deepcopy(default.current_version.definition), f"{default.name} v{default.current_version.number}"
    return copy.deepcopy(DEFAULT_SCORECARD), "the spec's default"


@admin_page
@require_http_methods(["GET", "POST"])
def admin_scorecards(request: HttpRequest) -> HttpResponse:
    """Scorecards in binding order (segment, position, version) and a form to add one: its settings only,
    the definition starts as a copy of the default scorecard's (then edited in the scorecard editor)."""
    from .forms import NewScorecardForm
    from .services import save_scorecard_version

    org = request.organization
    form = NewScorecardForm(organization=org, initial={"position": 100})
    status = 200
    if request.method == "POST":
        form = NewScorecardForm(request.POST, organization=org)
        if form.is_valid():
            data = form.cleaned_data
            if Scorecard.objects.filter(name=data["name"]).exists():
                form.add_error("name", "A scorecard of this organization already has this name.")
            else:
                start, source = _start_definition()
                with transaction.atomic():
                    card = Scorecard.objects.create(
                        organization=org, name=data["name"], description=data["description"],
                        segment=data["segment"], position=data["position"], is_active=data["is_active"],
                    )  # fmt: skip
                    save_scorecard_version(card, start, user=request.user, note=f"Created as a copy of {source}")
                messages.success(
                    request, f"Scorecard “{card.name}” created (version 1, a copy of {source}). Edit it below."
                )
                return redirect("admin-scorecard", org_slug=org.slug, scorecard_id=card.pk)
        status = 400
    cards = Scorecard.objects.select_related("segment", "current_version").annotate(n_versions=Count("versions"))
    return render(request, "health/admin_scorecards.html",
                  {"cards": cards, "form": form, "admin_tab": "scorecards"}, status=status)  # fmt: skip


def _editor_definition(request: HttpRequest, state, stable: set[str]) -> tuple:
    """The editor rows and the definition a POST describes, its problems, whether the JSON view was used
    and whether the action only added or removed a row. The JSON view is used when its box is ticked
    (``editor=json``), or when a client posts only ``definition`` (no structured rows), as scripts and
    the former JSON-only form do."""
    from .editor import apply_row_action, definition_from_state, state_from_definition, state_from_post
    from .forms import parse_definition_json
    from .scoring import validate_definition

    post = request.POST
    use_json = post.get("editor") == "json" or ("components-TOTAL" not in post and "definition" in post)
    if use_json:
        definition, errors = parse_definition_json(post.get("definition", ""))
        if isinstance(definition, dict):
            state = state_from_definition(definition, stable)
        return state, definition, errors, True, False
    state = state_from_post(post, stable)
    row_action = apply_row_action(state, post.get("action", ""))
    definition = definition_from_state(state)
    return state, definition, ([] if row_action else validate_definition(definition)), False, row_action


def _bands_preview(org, data: dict) -> dict:
    from .charts import band_labels
    from .editor import preview_bands

    preview = preview_bands(org, float(data["yellow"]), float(data["green"]))
    preview["labels"] = band_labels(preview["bands"])
    return preview


def _save_bands(request: HttpRequest, card, data: dict) -> HttpResponse:
    """Store the organization's colour bands and recompute every account's colour with them (a recorded
    job, after commit): the charts' band labels change at once, the colours with the recompute."""
    from .charts import band_labels
    from .triggers import schedule_org_recompute

    org = request.organization
    new = {"yellow": float(data["yellow"]), "green": float(data["green"])}
    if new != {k: float(v) for k, v in (org.health_bands or {}).items()}:
        with transaction.atomic():
            org.health_bands = new
            org.save(update_fields=["health_bands"])
            schedule_org_recompute(org.pk, reason="health_bands")
        labels = band_labels(new)
        messages.success(
            request,
            f"Colour bands saved: {labels['red']}, {labels['yellow']}, {labels['green']}. Every account's colour "
            "is being recomputed (see Job runs).",
        )
    else:
        messages.success(request, "The colour bands did not change.")
    return redirect(reverse("admin-scorecard", args=[org.slug, card.pk]) + "#bands")


def _diff_text(value) -> str | None:
    """A diff cell as its reader writes it: JSON for numbers, lists and objects, strings as they are."""
    import json

    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _store_draft(card, draft, definition: dict, *, user, note: str):
    """The edited definition as the scorecard's draft: the open one changed, else a new one."""
    from . import drafts

    if draft is not None:
        return drafts.update_draft(draft, definition, user=user, note=note or None)
    return drafts.create_draft(card, definition, user=user, note=note)


@admin_page
@require_POST
def admin_scorecard_draft_action(request: HttpRequest, scorecard_id: int, action: str) -> HttpResponse:
    """The draft's and the history's buttons: ``publish`` (the open draft, with the required note) and
    ``rollback`` (a new version copying the previously published one, with the required note; the page
    asks for confirmation first). Answers with the editor again (a message, or the error at its field)."""
    from . import drafts
    from .forms import VersionNoteForm

    org = request.organization
    card = get_object_or_404(Scorecard.objects.all(), pk=scorecard_id)  # scoped: another org's is a 404
    url = reverse("admin-scorecard", args=[org.slug, card.pk])
    form = VersionNoteForm(request.POST, prefix=action)
    if action not in ("publish", "rollback"):
        raise Http404
    if not form.is_valid():
        messages.error(request, "Nothing changed: " + form.errors["note"][0])
        return redirect(f"{url}#{'draft' if action == 'publish' else 'versions'}")
    note = form.cleaned_data["note"]
    try:
        if action == "publish":
            draft = drafts.open_draft(card)
            if draft is None:
                raise drafts.DraftError("There is no draft to publish.")
            version = drafts.publish(draft, user=request.user, note=note)
            messages.success(request, f"Version {version.number} published; the recompute queued now scores with it.")
        else:
            version = drafts.rollback(card, user=request.user, note=note)
            messages.success(
                request,
                f"Rolled back: version {version.number} (a copy of version {version.restores.number}) is published; "
                "the recompute queued now scores with it.",
            )
    except drafts.DraftError as exc:
        messages.error(request, str(exc))
    return redirect(f"{url}#versions")


@admin_page
@require_http_methods(["GET", "POST"])
def admin_scorecard(request: HttpRequest, scorecard_id: int) -> HttpResponse:
    """Edit one scorecard with the structured editor (components, groups, functions; ``health.editor``)
    or the JSON view, and the organization's colour bands (``action=preview-bands`` / ``save-bands``,
    previewed like a definition). ``action=preview`` scores today's accounts bound to it with the edited definition
    and shows how many accounts and how much ARR would change colour (nothing saved); ``action=save-draft``
    stores the settings and the edited definition as the scorecard's draft (created, or the open one
    changed: drafts never change scores); ``action=save`` ("Publish") stores the settings and, when the
    definition changed, puts it in the draft and publishes it with the (required) note;
    ``add-…``/``remove-…`` actions add or remove a row and show the form again. The editor opens on the
    open draft when there is one; ``?version=N`` loads another version's definition into it. Nothing is
    saved while any field is invalid; every problem is shown next to its field. The draft's panel
    (diff against the published version, preview, publish with a note) and the history's rollback post
    to :func:`admin_scorecard_draft_action`."""
    import json

    from . import drafts
    from .charts import band_labels
    from .editor import (
        FUNCTION_LABELS,
        SIGNAL_LABELS,
        SIGNAL_UNITS,
        BandsForm,
        attach_errors,
        effective_weights,
        known_usage_metrics,
        state_from_definition,
    )
    from .forms import ScorecardForm
    from .services import preview_scorecard

    org = request.organization
    card = get_object_or_404(Scorecard.objects.select_related("segment", "current_version"), pk=scorecard_id)
    versions = list(
        ScorecardVersion.objects.filter(scorecard=card)
        .select_related("created_by", "published_by", "restores")
        .order_by("-number")
    )
    current = next((v for v in versions if v.pk == card.current_version_id), None)
    draft = next((v for v in versions if v.published_at is None), None)
    shown = draft or current
    if request.GET.get("version", "").isdigit():
        shown = next((v for v in versions if v.number == int(request.GET["version"])), shown)
    saved_definition = current.definition if current else {}
    stable = {c.get("key") for c in saved_definition.get("components") or [] if isinstance(c, dict)}
    definition = shown.definition if shown else {"groups": [], "components": []}
    initial = {
        "name": card.name, "description": card.description, "segment": card.segment_id, "position": card.position,
        "is_active": card.is_active, "definition": json.dumps(definition, indent=2),
    }  # fmt: skip
    form = ScorecardForm(initial=initial, organization=org, is_default=card.is_default)
    state = state_from_definition(definition, stable)
    preview = None
    json_view = False
    json_errors: list[str] = []
    status = 200
    bands = org.health_bands or {}
    bands_form = BandsForm(initial={"yellow": bands.get("yellow", 50), "green": bands.get("green", 75)})
    bands_preview = None
    draft_preview = None
    if request.method == "GET" and request.GET.get("preview") == "draft" and draft is not None:
        draft_preview = drafts.preview_version(draft)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action in ("preview-bands", "save-bands"):
        # The organization's colour bands: their own small form on this page, previewed like a definition.
        bands_form = BandsForm(request.POST)
        if not bands_form.is_valid():
            status = 400
        elif action == "preview-bands":
            bands_preview = _bands_preview(org, bands_form.cleaned_data)
        else:
            return _save_bands(request, card, bands_form.cleaned_data)
    elif request.method == "POST":
        form = ScorecardForm(request.POST, initial=initial, organization=org, is_default=card.is_default)
        state, definition, errors, json_view, row_action = _editor_definition(request, state, stable)
        settings_ok = form.is_valid()
        if errors:
            attach_errors(state, errors)
            json_errors = [f"{path}: {message}" for path, message in errors] if json_view else []
            status = 400
        elif row_action:
            pass  # a row added or removed: the form again, nothing scored or saved
        elif not settings_ok:
            status = 400
        elif request.POST.get("action") == "preview":
            preview = preview_scorecard(org, card, definition)
        elif request.POST.get("action") in ("save", "save-draft"):
            data = form.cleaned_data
            publishing = request.POST.get("action") == "save"
            changed = current is None or current.definition != definition
            if Scorecard.objects.filter(name=data["name"]).exclude(pk=card.pk).exists():
                form.add_error("name", "A scorecard of this organization already has this name.")
                status = 400
            elif publishing and changed and not data["note"].strip():
                form.add_error("note", "Say what changed: the note is stored with the new version.")
                status = 400
            else:
                with transaction.atomic():
                    card.name, card.description, card.position = data["name"], data["description"], data["position"]
                    if not card.is_default:
                        card.segment, card.is_active = data["segment"], data["is_active"]
                    card.save()
                    version = None
                    if changed or (not publishing and draft is not None):
                        version = _store_draft(card, draft, definition, user=request.user, note=data["note"].strip())
                    if publishing and changed:
                        version = drafts.publish(version, user=request.user, note=data["note"])
                if publishing and changed:
                    messages.success(
                        request, f"Version {version.number} published; the recompute queued now scores with it."
                    )
                elif version is not None:
                    messages.success(
                        request,
                        f"Draft version {version.number} saved: it changes no score until it is published. "
                        "Its changes are listed below.",
                    )
                else:
                    messages.success(request, "Settings saved; the definition did not change (no new version).")
                return redirect("admin-scorecard", org_slug=org.slug, scorecard_id=card.pk)
    effective_weights(state)
    if isinstance(definition, dict):
        for row, component in zip(state.components, definition.get("components") or [], strict=False):
            if isinstance(component, dict) and isinstance(component.get("function"), dict):
                row.summary = _function_summary(component["function"])
    if json_view and json_errors:
        definition_json = request.POST.get("definition", "")
    else:
        definition_json = json.dumps(definition, indent=2) if definition is not None else ""
    for v in versions:
        v.state_label = v.state_for(card.current_version_id)
    draft_diff = None
    if draft is not None:
        draft_diff = [
            {**row, "before": _diff_text(row["before"]), "after": _diff_text(row["after"])}
            for row in drafts.diff_version(draft, current)
        ]
    context = {
        "card": card,
        "form": form,
        "draft": draft,
        "draft_diff": draft_diff,
        "current": current,
        # What drafts.rollback would copy (drafts.previous_published), from the versions already read.
        "rollback_target": max(
            (v for v in versions if v.published_at is not None and v.pk != card.current_version_id),
            key=lambda v: (v.published_at, v.number),
            default=None,
        )
        if current is not None
        else None,
        "draft_preview": draft_preview,
        "settings_fields": [form[name] for name in ("name", "description", "segment", "position", "is_active")],
        "versions": versions,
        "shown": shown,
        "state": state,
        "signal_labels": SIGNAL_LABELS,
        "signal_units": SIGNAL_UNITS,
        "bands_form": bands_form,
        "bands_preview": bands_preview,
        "band_names": band_labels(org.health_bands),
        "function_labels": FUNCTION_LABELS,
        "usage_metrics": known_usage_metrics(org.pk),
        "definition_json": definition_json,
        "json_view": json_view,
        "json_errors": json_errors,
        "has_errors": status == 400,
        "preview": preview,
        "admin_tab": "scorecards",
    }
    # Sections of the apps above health (renewals: the backtest), registered in their ready().
    from .scorecard_sections import scorecard_section_context

    context.update(scorecard_section_context(request, card))
    return render(request, "health/admin_scorecard.html", context, status=status)


# --- The rows behind a health signal (Account 360 evidence links) ---------------------------------

ROWS_LIMIT = 200


@org_page()
@require_GET
def account_rows(request: HttpRequest, account_id: int, kind: str) -> HttpResponse:
    """One account's tickets, invoices, daily usage metrics or survey responses: the rows a health signal
    was computed from (each Account 360 evidence line links here). Newest first, at most 200 rows, with
    the figure the signal reads restated above the table. Every member may read it."""
    from accounts.views import _get_account
    from feedback.models import SurveyKind, SurveyResponse

    from .analytics import NPS_WINDOW, SUPPORT_WINDOW, USAGE_LOOKBACK
    from .evidence import ROW_KINDS
    from .models import Invoice, Ticket, UsageMetric

    if kind not in ROW_KINDS:
        raise Http404("No such list.")
    account = _get_account(account_id)
    today = local_today(request.organization)
    context: dict = {"account": account, "kind": kind, "limit": ROWS_LIMIT, "today": today}
    if kind == "tickets":
        rows = Ticket.objects.filter(account=account).order_by("-opened_at", "-id")
        context.update(title="Tickets", window=SUPPORT_WINDOW,
                       since=timezone.now() - timedelta(days=SUPPORT_WINDOW))  # fmt: skip
    elif kind == "invoices":
        rows = Invoice.objects.filter(account=account).order_by("-due_date", "-id")
        context.update(title="Invoices")
    elif kind == "usage":
        metrics = list(
            UsageMetric.objects.filter(account=account).order_by("metric").values_list("metric", flat=True).distinct()
        )
        metric = request.GET.get("metric") or ("active_users" if "active_users" in metrics else "")
        rows = UsageMetric.objects.filter(account=account, date__gte=today - timedelta(days=USAGE_LOOKBACK - 1))
        if metric:
            rows = rows.filter(metric=metric)
        rows = rows.order_by("-date", "metric")
        context.update(title="Usage", metrics=metrics, metric=metric, window=USAGE_LOOKBACK)
    else:
        rows = SurveyResponse.objects.filter(account=account).select_related("contact").order_by("-responded_at", "-id")
        survey_kind = request.GET.get("kind", "")
        if survey_kind in SurveyKind.values:
            rows = rows.filter(kind=survey_kind)
        context.update(title="Survey responses", survey_kind=survey_kind, kinds=SurveyKind.choices,
                       window=NPS_WINDOW)  # fmt: skip
    rows = list(rows[: ROWS_LIMIT + 1])
    context.update(rows=rows[:ROWS_LIMIT], more=len(rows) > ROWS_LIMIT)
    return render(request, "health/account_rows.html", context)
