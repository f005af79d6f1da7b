"""Backtest pages (issue 14): ``/o/<slug>/admin/scorecards/<id>/backtests/`` — start a backtest of a scorecard
version (admins), follow its progress, read its result, compare two backtests side by side (admins and
leaders) — and the backtest section of the scorecard editor page (``health.scorecard_sections``).

Charts are server-rendered SVG (:func:`renewals.charts.hbar_chart`), each with a table of the same numbers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from cs_platform.choices import Role
from cs_platform.pages import org_page
from health.charts import FILL, band_labels
from health.models import Scorecard, ScorecardVersion

from .backtest import DEFAULT_HORIZON_DAYS, MAX_HORIZON_DAYS, NoSuggestion, apply_suggestion_as_draft, start_backtest
from .charts import Series, hbar_chart
from .models import Backtest

READERS = [Role.ADMIN, Role.LEADER]
LIST_LIMIT = 50
NEUTRAL = "#3b5b8c"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"


def band_chart(result: dict[str, Any]) -> Any:
    """Churn rate per colour band: one labelled bar per band, the count in words after it."""
    labels = band_labels(result.get("bands_thresholds"))
    series = [Series(b, labels[b], FILL[b]) for b in ("red", "yellow", "green")]
    rows = [
        (labels[b["band"]], {b["band"]: b["churn_rate"] or 0}, f"{b['churned']} of {b['renewals']} churned")
        for b in result.get("bands") or []
    ]
    return hbar_chart(
        rows,
        series,
        fmt=_pct,
        title="Churn rate per health colour",
        desc="; ".join(f"{label}: {_pct(v[next(iter(v))])}, {note}" for label, v, note in rows),
    )


def calibration_chart(result: dict[str, Any]) -> Any:
    """Observed churn per score decile (lowest scores first)."""
    rows = [
        (
            f"Decile {c['decile']} · {c['score_min']:g}–{c['score_max']:g}",
            {"churn": c["churn_rate"] or 0},
            f"{c['churned']} of {c['renewals']}",
        )
        for c in result.get("calibration") or []
    ]
    if not rows:
        return None
    return hbar_chart(
        rows,
        [Series("churn", "Observed churn", NEUTRAL)],
        fmt=_pct,
        title="Observed churn per score decile",
        desc="; ".join(f"{label}: {_pct(v['churn'])}, {note}" for label, v, note in rows),
    )


def result_context(backtest: Backtest) -> dict[str, Any]:
    """What the result templates show: the result, its charts and the bands' labels."""
    result = backtest.result or {}
    if not result:
        return {"backtest": backtest, "result": None}
    return {
        "backtest": backtest,
        "result": result,
        "band_chart": band_chart(result),
        "calibration_chart": calibration_chart(result),
        "labels": band_labels(result.get("bands_thresholds")),
    }


def scorecard_section(request: HttpRequest, scorecard: Scorecard) -> dict[str, Any]:
    """The scorecard page's backtest section: the latest finished backtest of this scorecard (2 queries)."""
    latest = (
        Backtest.objects.filter(scorecard=scorecard)
        .exclude(result={})
        .select_related("scorecard_version", "job")
        .order_by("-created_at", "-id")
        .first()
    )
    running = Backtest.objects.filter(scorecard=scorecard, result={}, job__status__in=["queued", "running"]).count()
    return {"backtest_latest": result_context(latest) if latest else None, "backtest_running": running}


class StartForm(forms.Form):
    scorecard_version = forms.ModelChoiceField(
        queryset=ScorecardVersion.all_orgs.none(), label="Version", empty_label=None,
        help_text="Any version of this scorecard, the current one or an older one",
    )  # fmt: skip
    date_from = forms.DateField(label="Renewals due from", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="Renewals due to", widget=forms.DateInput(attrs={"type": "date"}))
    horizon_days = forms.IntegerField(
        label="Days before the due date", min_value=1, max_value=MAX_HORIZON_DAYS, initial=DEFAULT_HORIZON_DAYS,
        help_text="Each account is scored as it looked this many days before its renewal was due",
    )  # fmt: skip

    def __init__(self, *args: Any, scorecard: Scorecard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["scorecard_version"]
        field.queryset = ScorecardVersion.objects.filter(scorecard=scorecard).order_by("-number")
        field.label_from_instance = lambda v: (
            f"v{v.number}"
            + (" (current)" if v.pk == scorecard.current_version_id else "")
            + (f" — {v.note}" if v.note else "")
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "Must be on or after the first date.")
        return data


def _comparison(a: Backtest, b: Backtest) -> list[tuple[str, str, str]]:
    """Rows ``(figure, first, second)`` of two results, side by side."""

    def fig(result: dict[str, Any], key: str) -> str:
        value = result.get(key)
        if key in ("churn_rate",):
            return _pct(value)
        return "—" if value is None else str(value)

    ra, rb = a.result or {}, b.result or {}
    rows = [
        ("Version", f"v{a.scorecard_version.number}", f"v{b.scorecard_version.number}"),
        ("Renewals due", f"{a.date_from} – {a.date_to}", f"{b.date_from} – {b.date_to}"),
        ("Days before the due date", str(a.horizon_days), str(b.horizon_days)),
        ("Renewals scored", fig(ra, "scored"), fig(rb, "scored")),
        ("AUC (higher is better)", fig(ra, "auc"), fig(rb, "auc")),
        ("AUC 95% interval", f"{fig(ra, 'auc_ci_low')} – {fig(ra, 'auc_ci_high')}",
         f"{fig(rb, 'auc_ci_low')} – {fig(rb, 'auc_ci_high')}"),
        ("Churn rate, all", fig(ra, "churn_rate"), fig(rb, "churn_rate")),
        ("Lift of red", fig(ra, "red_lift"), fig(rb, "red_lift")),
    ]  # fmt: skip
    labels = band_labels(ra.get("bands_thresholds"))
    for i, band in enumerate(("red", "yellow", "green")):
        ba = (ra.get("bands") or [{}] * 3)[i]
        bb = (rb.get("bands") or [{}] * 3)[i]
        rows.append(
            (
                f"Churn rate, {labels[band]}",
                f"{_pct(ba.get('churn_rate'))} ({ba.get('churned', 0)} of {ba.get('renewals', 0)})",
                f"{_pct(bb.get('churn_rate'))} ({bb.get('churned', 0)} of {bb.get('renewals', 0)})",
            )
        )
    return rows


@org_page(roles=READERS)
@require_http_methods(["GET", "POST"])
def scorecard_backtests(request: HttpRequest, scorecard_id: int) -> HttpResponse:
    """Start (admins), follow, read and compare the backtests of one scorecard.

    ``?shown=<id>`` shows one backtest's result; ``?compare=<id>&compare=<id>`` two side by side.
    """
    org = request.organization
    card = get_object_or_404(Scorecard.objects.select_related("current_version"), pk=scorecard_id)
    is_admin = request.membership.role == Role.ADMIN
    today = timezone.localdate()
    form = StartForm(
        scorecard=card,
        initial={
            "scorecard_version": card.current_version_id,
            "date_from": today - dt.timedelta(days=730),
            "date_to": today,
        },
    )
    status = 200
    if request.method == "POST":
        if not is_admin:
            raise PermissionDenied("Only admins start backtests.")
        form = StartForm(request.POST, scorecard=card)
        if form.is_valid():
            data = form.cleaned_data
            try:
                backtest = start_backtest(
                    org, scorecard=card, version=data["scorecard_version"], date_from=data["date_from"],
                    date_to=data["date_to"], horizon_days=data["horizon_days"], user=request.user,
                )  # fmt: skip
            except ValidationError as exc:
                for name, problems in exc.message_dict.items():
                    form.add_error(name if name in form.fields else None, problems)
                status = 400
            else:
                messages.success(request, "Backtest started: it runs in the background. Reload to follow it.")
                return redirect(f"{request.path}?shown={backtest.pk}")
        else:
            status = 400
    backtests = list(
        Backtest.objects.filter(scorecard=card)
        .select_related("scorecard_version", "job", "created_by")
        .order_by("-created_at", "-id")[:LIST_LIMIT]
    )
    by_id = {b.pk: b for b in backtests}
    shown = None
    if request.GET.get("shown", "").isdigit():
        picked = by_id.get(int(request.GET["shown"]))
        shown = result_context(picked) if picked else None
    compared = None
    picks = [by_id.get(int(v)) for v in request.GET.getlist("compare") if v.isdigit()]
    picks = [p for p in picks if p is not None and p.result]
    if len(picks) >= 2:
        a, b = picks[0], picks[1]
        compared = {"a": a, "b": b, "rows": _comparison(a, b)}
    context = {
        "card": card,
        "form": form,
        "is_admin": is_admin,
        "backtests": backtests,
        "shown": shown,
        "compared": compared,
        "compare_error": len([v for v in request.GET.getlist("compare") if v]) not in (0, 2)
        or (bool(request.GET.getlist("compare")) and compared is None),
        "admin_tab": "scorecards",
    }
    return render(request, "renewals/backtests.html", context, status=status)


@org_page(roles=[Role.ADMIN])
@require_http_methods(["POST"])
def apply_suggestion(request: HttpRequest, scorecard_id: int, backtest_id: int) -> HttpResponse:
    """ "Use these weights as a draft" (admins): the suggestion goes into the scorecard's draft, and the editor
    opens on that draft's diff against the published version, to preview, backtest and publish."""
    card = get_object_or_404(Scorecard, pk=scorecard_id)
    backtest = get_object_or_404(Backtest.objects.select_related("scorecard", "scorecard_version"), pk=backtest_id,
                                 scorecard=card)  # fmt: skip
    try:
        draft, created = apply_suggestion_as_draft(backtest, user=request.user)
    except NoSuggestion as exc:
        messages.error(request, str(exc))
        return redirect(f"{reverse('scorecard-backtests', args=[request.organization.slug, card.pk])}"
                        f"?shown={backtest.pk}")  # fmt: skip
    verb = "is now the draft" if created else "replaced the open draft's weights"
    messages.success(
        request,
        f"The suggested weights {verb} (version {draft.number}). Review the differences, preview and publish it.",
    )
    return redirect(f"{reverse('admin-scorecard', args=[request.organization.slug, card.pk])}#draft")
