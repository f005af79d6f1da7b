"""Feedback pages: the Voice of the customer dashboard (``/o/<slug>/voice/``), the survey admin
(``/o/<slug>/admin/surveys/``) with the email and page previews, and Account 360's responses panel.

**Layers.** The dashboard's detractor list shows each account's open CTA, which is playbooks' data; feedback
may not import playbooks. The list is composed like My book's columns: ``accounts.composition``'s
``register_account_column("voice-detractors", …)``, which playbooks fills from its ``ready()`` (the CTA cell).
Without playbooks installed the column is simply absent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.choices import Role
from accounts.composition import account_columns
from accounts.models import Account, Membership, Segment
from cs_platform.pages import org_page

from . import analytics, charts
from .emails import MERGE_FIELDS, merge_values, render_invitation
from .filtersets import CATEGORY_CHOICES, SurveyResponseFilterSet, category_q
from .forms import SendForm, SurveyForm, SurveySettingsForm
from .models import SCORE_RANGES, Survey, SurveyKind, SurveyResponse, SurveySend
from .public_views import LABELS
from .services import can_cancel, cancel_send, create_send, revoke_links, send_counts, start_send, survey_settings

DETRACTOR_DAYS = 90
admin_page = org_page(roles=[Role.ADMIN])


def account_responses(request: HttpRequest, account: Any) -> dict[str, Any]:
    """Account 360's survey responses panel: the account's latest 10 responses (one query)."""
    rows = list(
        SurveyResponse.objects.for_org(account.organization_id)
        .filter(account=account)
        .select_related("contact", "survey")
        .order_by("-responded_at", "-pk")[:10]
    )
    return {"survey_responses": rows}


# --- The VoC dashboard -----------------------------------------------------------------------------------


def _scope(request: HttpRequest) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dashboard's filters (segment, owner) as ORM filters on responses, and the values shown."""
    filters: dict[str, Any] = {}
    shown: dict[str, Any] = {"segment": "", "owner": ""}
    segment_id = request.GET.get("segment", "")
    if segment_id.isdigit():
        segment = Segment.objects.filter(pk=int(segment_id)).first()
        if segment is not None:
            from accounts.segments import compile_or_none

            condition = compile_or_none(segment.rules)  # invalid rules match nobody
            members = Account.objects.none() if condition is None else Account.objects.filter(condition)
            filters["account_id__in"] = members.values("pk")
            shown["segment"] = segment_id
    owner = request.GET.get("owner", "")
    if owner == "me" or owner.isdigit():
        filters["account__owner_id"] = request.user.pk if owner == "me" else int(owner)
        shown["owner"] = owner
    return filters, shown


@org_page()
@require_GET
def voice(request: HttpRequest) -> HttpResponse:
    """NPS/CSAT/CES by month with the benchmark (chart and table with the same figures), the score
    distribution, detractors to follow up with their CTA, and the verbatims (search and filters)."""
    org = request.organization  # type: ignore[attr-defined]
    today = timezone.localdate(timezone=ZoneInfo(org.time_zone or "UTC"))  # the org's day, not the server's
    try:
        months = min(24, max(3, int(request.GET.get("months", 12))))
    except ValueError:
        months = 12
    kind = request.GET.get("kind", SurveyKind.NPS)
    kind = kind if kind in SurveyKind.values else SurveyKind.NPS
    filters, shown = _scope(request)
    config = survey_settings(org.pk)
    trend = analytics.monthly_trend(org, months, today, **filters)
    start = analytics.month_starts(months, today)[0]
    totals = {str(k): analytics.figures(org, k, start, today, **filters) for k in SurveyKind.values}
    benchmarks = {"nps": config.nps_benchmark, "csat": config.csat_benchmark, "ces": config.ces_benchmark}
    charts_by_kind = {
        "nps": charts.trend_line(trend, "nps", benchmark=float(config.nps_benchmark), low=-100, high=100, unit="NPS"),
        "csat": charts.trend_line(trend, "csat", benchmark=float(config.csat_benchmark), low=0, high=100,
                                  unit="CSAT (% satisfied)"),
        "ces": charts.trend_line(trend, "ces", benchmark=float(config.ces_benchmark), low=0, high=100,
                                 unit="CES (% easy)"),
    }  # fmt: skip
    dist = analytics.distribution(org, kind, start, today, **filters)

    since = timezone.now() - dt.timedelta(days=DETRACTOR_DAYS)
    detractors = list(
        SurveyResponse.objects.filter(category_q("detractor"), responded_at__gte=since, **filters)
        .select_related("account", "contact", "account__owner")
        .order_by("-responded_at", "-pk")[:25]
    )
    columns = account_columns("voice-detractors")
    if columns:
        ids = list({r.account_id for r in detractors})
        values = [(column, column.values(request, ids)) for column in columns]
        for r in detractors:
            r.extra_cells = [(column, found.get(r.account_id)) for column, found in values]  # type: ignore[attr-defined]

    verbatim_rows = SurveyResponse.objects.exclude(comment="").filter(**filters).select_related("account", "contact")
    # The verbatims' kind is its own parameter (``v_kind``): ``kind`` is the distribution's selector.
    verbatim_query = request.GET.copy()
    verbatim_query.pop("kind", None)
    if request.GET.get("v_kind"):
        verbatim_query["kind"] = request.GET["v_kind"]
    verbatims = SurveyResponseFilterSet(verbatim_query, queryset=verbatim_rows, request=request)
    page = Paginator(verbatims.qs.order_by("-responded_at", "-pk"), 20).get_page(request.GET.get("page"))
    context = {
        "nav_current": "voice",
        "months": months,
        "trend": trend,
        "totals": totals,
        "benchmarks": benchmarks,
        "charts": charts_by_kind,
        "kind": kind,
        "kind_choices": SurveyKind.choices,
        "distribution": dist,
        "distribution_chart": charts.distribution_bars(dist),
        "detractors": detractors,
        "detractor_columns": columns,
        "detractor_days": DETRACTOR_DAYS,
        "verbatims": page,
        "verbatim_filter": verbatims.form,
        "category_choices": CATEGORY_CHOICES,
        "segments": Segment.objects.order_by("position", "name"),
        "owners": Membership.objects.filter(role__in=[Role.CSM, Role.LEADER, Role.ADMIN]).select_related("user"),
        "shown": shown,
        "query": request.GET,
    }
    return render(request, "feedback/voice.html", context)


# --- Survey admin -----------------------------------------------------------------------------------------


@admin_page
@require_http_methods(["GET", "POST"])
def admin_surveys(request: HttpRequest) -> HttpResponse:
    """Every survey with its sends' figures; a new survey; the organization's survey settings."""
    org = request.organization  # type: ignore[attr-defined]
    config = survey_settings(org.pk)
    form = SurveyForm(organization=org, prefix="survey", initial={"kind": "nps", **DEFAULT_COPY["nps"]})
    settings_form = SurveySettingsForm(instance=config, prefix="settings")
    if request.method == "POST":
        if request.POST.get("action") == "settings":
            settings_form = SurveySettingsForm(request.POST, instance=config, prefix="settings")
            if settings_form.is_valid():
                settings_form.save()
                messages.success(request, "Survey settings saved.")
                return redirect("admin-surveys", org_slug=org.slug)
        else:
            form = SurveyForm(request.POST, organization=org, prefix="survey")
            if form.is_valid():
                survey = form.save(commit=False)
                survey.organization = org
                survey.created_by = request.user
                survey.save()
                messages.success(request, f"Survey “{survey.name}” created.")
                return redirect("admin-survey", org_slug=org.slug, survey_id=survey.pk)
    surveys = list(Survey.objects.order_by("name"))
    sends = list(SurveySend.objects.values_list("pk", "survey_id"))
    counts = send_counts(org.pk, [pk for pk, _ in sends])
    for survey in surveys:
        mine = [counts[pk] for pk, survey_id in sends if survey_id == survey.pk]
        sent = sum(c["sent"] for c in mine)
        responded = sum(c["responded"] for c in mine)
        survey.n_sends, survey.n_sent, survey.n_responded = len(mine), sent, responded  # type: ignore[attr-defined]
        survey.rate = analytics.percent(responded, sent)  # type: ignore[attr-defined]  # half-up, as elsewhere
    status = 400 if request.method == "POST" else 200
    context = {"surveys": surveys, "form": form, "settings_form": settings_form, "admin_tab": "surveys",
               "merge_fields": MERGE_FIELDS}  # fmt: skip
    return render(request, "feedback/admin_surveys.html", context, status=status)


DEFAULT_COPY = {
    "nps": {"question": "How likely are you to recommend us to a friend or colleague?",
            "email_subject": "{{ account.name }}: one quick question",
            "email_body": "Hi {{ contact.first_name }},\n\nWe would love your honest opinion: it takes one click.\n\n"
                          "Thank you,\n{{ csm.name }}"},
}  # fmt: skip


@admin_page
@require_http_methods(["GET", "POST"])
def admin_survey(request: HttpRequest, survey_id: int) -> HttpResponse:
    """One survey: edit it, its sends with recipients, skips, sends and response rates, a new send, and the
    previews of its email and its page."""
    org = request.organization  # type: ignore[attr-defined]
    survey = get_object_or_404(Survey.objects, pk=survey_id)
    form = SurveyForm(instance=survey, organization=org, prefix="survey")
    send_form = SendForm(organization=org, prefix="send")
    status = 200
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "edit":
            form = SurveyForm(request.POST, instance=survey, organization=org, prefix="survey")
            if form.is_valid():
                form.save()
                messages.success(request, "Survey saved.")
                return redirect("admin-survey", org_slug=org.slug, survey_id=survey.pk)
        elif action == "send":
            send_form = SendForm(request.POST, organization=org, prefix="send")
            if not survey.active:
                send_form.add_error(None, "This survey is inactive: activate it before sending.")
            if send_form.is_valid():
                data = send_form.cleaned_data
                send = create_send(
                    survey,
                    segment=data["segment"] if data["target"] == "segment" else None,
                    account=data["account"] if data["target"] == "account" else None,
                    roles=data["roles"], schedule=data["schedule"],
                    interval_weeks=data["interval_weeks"] if data["schedule"] == "recurring" else None,
                    drip_days=data["drip_days"] or 0, source="manual", created_by=request.user,
                )  # fmt: skip
                result = start_send(send)
                if result is None:
                    messages.success(request, "Send started: the segment's contacts are being surveyed in the "
                                              "background; refresh for the figures.")  # fmt: skip
                else:
                    messages.success(
                        request,
                        f"Sent: {result.invited} contact(s) invited, {sum(result.skipped.values())} skipped"
                        f"{' (the drip sends the rest over the coming days)' if send.drip_days else ''}.",
                    )
                return redirect("admin-survey", org_slug=org.slug, survey_id=survey.pk)
        elif action == "cancel":
            send = get_object_or_404(SurveySend.objects, pk=request.POST.get("send"), survey=survey)
            if cancel_send(send):
                messages.success(request, "Send cancelled: no further run, and no waiting drip email goes out.")
            return redirect("admin-survey", org_slug=org.slug, survey_id=survey.pk)
        elif action == "revoke-links":
            send = get_object_or_404(SurveySend.objects, pk=request.POST.get("send"), survey=survey)
            revoked = revoke_links(send, by=request.user)
            messages.success(request, f"{revoked} survey link(s) revoked: their page now says the link was withdrawn.")
            return redirect("admin-survey", org_slug=org.slug, survey_id=survey.pk)
        status = 400
    sends = list(SurveySend.objects.filter(survey=survey).select_related("segment", "account")[:50])
    counts = send_counts(org.pk, [s.pk for s in sends])
    for send in sends:
        send.counts = counts[send.pk]  # type: ignore[attr-defined]
        send.cancellable = can_cancel(send, counts[send.pk]["scheduled"])  # type: ignore[attr-defined]
        send.rate = analytics.percent(counts[send.pk]["responded"], counts[send.pk]["sent"])  # type: ignore[attr-defined]
    context = {
        "survey": survey, "form": form, "send_form": send_form, "sends": sends, "admin_tab": "surveys",
        "preview": _preview(request, survey), "merge_fields": MERGE_FIELDS,
    }  # fmt: skip
    return render(request, "feedback/admin_survey.html", context, status=status)


def _preview(request: HttpRequest, survey: Survey) -> Any:
    """The email as a sample contact would get it (the links are examples: no token is made)."""
    org = request.organization  # type: ignore[attr-defined]

    class Sample:
        name = "Jordan Example"

    account = Account.objects.select_related("owner").order_by("name").first()
    values = merge_values(contact=Sample(), account=account, organization=org)
    base = request.build_absolute_uri("/")
    return render_invitation(
        survey, values, link=f"{base}s/<your-link>/", unsubscribe=f"{base}u/<your-unsubscribe-link>/"
    )


@admin_page
@require_GET
def admin_survey_page_preview(request: HttpRequest, survey_id: int) -> HttpResponse:
    """The public response page as a contact sees it (the form posts nowhere)."""
    survey = get_object_or_404(Survey.objects, pk=survey_id)
    low, high = SCORE_RANGES[survey.kind]
    context = {
        "state": "open", "preview": True, "org_name": request.organization.name,  # type: ignore[attr-defined]
        "question": survey.question, "comment_question": survey.comment_question,
        "scores": list(range(low, high + 1)), "labels": LABELS[survey.kind], "kind": survey.kind, "token": "preview",
    }  # fmt: skip
    return render(request, "feedback/respond.html", context)


@admin_page
@require_POST
def admin_survey_delete(request: HttpRequest, survey_id: int) -> HttpResponse:
    survey = get_object_or_404(Survey.objects, pk=survey_id)
    name = survey.name
    survey.delete()  # responses stay (survey set to null): figures never lose an answer
    messages.success(request, f"Survey “{name}” deleted; its responses are kept.")
    return redirect("admin-surveys", org_slug=request.organization.slug)  # type: ignore[attr-defined]


__all__ = ["account_responses", "admin_survey", "admin_surveys", "voice"]


class MyDetractors:
    """My book's "New detractors" panel (spec §7.1): detractor responses of the last 30 days on the member's
    accounts, newest first. Lazy: one query, only when the page shows the panel (on one's own book)."""

    DAYS = 30

    def __init__(self, request: HttpRequest) -> None:
        self.user = request.user

    @property
    def rows(self) -> list[SurveyResponse]:
        if not hasattr(self, "_rows"):
            since = timezone.now() - dt.timedelta(days=self.DAYS)
            self._rows = list(
                SurveyResponse.objects.filter(
                    category_q("detractor"), account__owner=self.user, responded_at__gte=since
                )
                .select_related("account", "contact")
                .order_by("-responded_at", "-pk")[:50]
            )
        return self._rows

    @property
    def shown(self) -> list[SurveyResponse]:
        return self.rows[:6]


def my_book_context(request: HttpRequest) -> dict[str, Any]:
    return {"my_detractors": MyDetractors(request)}
