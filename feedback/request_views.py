"""Feature request pages under ``/o/<slug>/voice/requests/``: the board ranked by ARR at stake, a request's
page (links, status, merge, the tickets carrying its issue key) and the Account 360 panel's form.

Everyone reads; admins, leaders and CSMs create requests and link accounts they may write; admins and
leaders edit, change the status and merge (:func:`feedback.requests.can_manage`)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import Account, Segment
from cs_platform.pages import org_page

from . import requests as svc
from .models_requests import FeatureRequest, FeatureRequestLink, RequestStatus, RequestType
from .request_forms import AccountRequestForm, LinkForm, MergeForm, RequestForm, StatusForm

PAGE_SIZE = 50
WRITERS = ("admin", "leader", "csm")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _board_context(request: HttpRequest, form: RequestForm | None = None) -> dict[str, Any]:
    org = request.organization  # type: ignore[attr-defined]
    status = request.GET.get("status", "")
    status = status if status in RequestStatus.values or status == "open" else ""
    statuses = ["new", "under_review", "planned"] if status == "open" else ([status] if status else None)
    area = request.GET.get("area", "").strip()
    rtype = request.GET.get("type", "")
    rtype = rtype if rtype in RequestType.values else ""
    segments = list(Segment.objects.for_org(org).order_by("name").values("id", "name"))
    segment_id = _int(request.GET.get("segment"))
    if segment_id not in {s["id"] for s in segments}:
        segment_id = None
    q = request.GET.get("q", "").strip()[:100]
    queryset = svc.ranked(org, status=statuses, product_area=area or None, type=rtype or None,
                          segment_id=segment_id, q=q or None)  # fmt: skip
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    first = (page.number - 1) * PAGE_SIZE
    rows = [(first + i + 1, fr) for i, fr in enumerate(page.object_list)]
    return {
        "nav_current": "voice-requests",
        "rows": rows,
        "page": page,
        "filters": {"status": status, "area": area, "type": rtype, "segment": segment_id, "q": q},
        "filtered": bool(status or area or rtype or segment_id or q),
        "statuses": RequestStatus.choices,
        "types": RequestType.choices,
        "areas": svc.product_areas(org),
        "segments": segments,
        "window": svc.RENEWAL_WINDOW_DAYS,
        "can_create": request.actor.role in WRITERS,  # type: ignore[attr-defined]
        "form": form or RequestForm(),
    }


@org_page()
def board(request: HttpRequest) -> HttpResponse:
    """The board (GET) and a new request from it (POST: admins, leaders, CSMs)."""
    form = None
    if request.method == "POST":
        if request.actor.role not in WRITERS:  # type: ignore[attr-defined]
            raise PermissionDenied("Viewers cannot create requests.")
        form = RequestForm(request.POST)
        if form.is_valid():
            try:
                fr = svc.create_request(request.organization, by=request.user, **form.cleaned_data)  # type: ignore[attr-defined]
            except svc.RequestError as refused:
                form.add_error(refused.field if refused.field in form.fields else None, str(refused))
            else:
                messages.success(request, f"Request “{fr.title}” created. Link the accounts waiting on it.")
                return redirect("feature-request", org_slug=request.organization.slug, request_id=fr.pk)  # type: ignore[attr-defined]
    response = render(request, "feedback/requests_board.html", _board_context(request, form))
    if form is not None:
        response.status_code = 400
    return response


def _get(request_id: int) -> FeatureRequest:
    fr = FeatureRequest.objects.select_related("merged_into", "created_by").filter(pk=request_id).first()
    if fr is None:
        raise Http404("No such request")
    return fr


def _detail_context(request: HttpRequest, fr: FeatureRequest, **forms: Any) -> dict[str, Any]:
    org = request.organization  # type: ignore[attr-defined]
    actor = request.actor  # type: ignore[attr-defined]
    figures = svc.ranked(org).filter(pk=fr.pk).first() if fr.merged_into_id is None else None
    links = list(
        FeatureRequestLink.objects.filter(request=fr)
        .select_related("account", "account__owner", "requested_by")
        .order_by("-account__arr", "account__name")
    )
    for link in links:
        link.writable = actor.can_write_account(link.account)  # type: ignore[attr-defined]
    manage = svc.can_manage(actor) and fr.merged_into_id is None
    merge_choices = []
    if manage:
        merge_choices = [
            (pk, f"#{pk} {title}")
            for pk, title in FeatureRequest.objects.filter(merged_into__isnull=True)
            .exclude(pk=fr.pk)
            .order_by("title")
            .values_list("pk", "title")[:500]
        ]
    sections = [(s.template, s.context(request, fr)) for s in svc.request_sections()]
    return {
        "nav_current": "voice-requests",
        "fr": fr,
        "figures": figures,
        "links": links,
        "changes": list(fr.changes.select_related("by")[:50]),
        "duplicates": list(fr.merged_duplicates.order_by("pk").values("pk", "title")),
        "sections": sections,
        "can_manage": manage,
        "can_link": actor.role in WRITERS and fr.merged_into_id is None,
        "edit_form": forms.get("edit_form")
        or RequestForm(initial={f: getattr(fr, f) for f in RequestForm.base_fields}),
        "status_form": forms.get("status_form") or StatusForm(initial={"status": fr.status}),
        "link_form": forms.get("link_form") or LinkForm(),
        "merge_form": forms.get("merge_form") or MergeForm(choices=merge_choices),
        "window": svc.RENEWAL_WINDOW_DAYS,
    }


@org_page()
def detail(request: HttpRequest, request_id: int) -> HttpResponse:
    fr = _get(request_id)
    return render(request, "feedback/request_detail.html", _detail_context(request, fr))


def _back(request: HttpRequest, fr: FeatureRequest) -> HttpResponse:
    return redirect("feature-request", org_slug=request.organization.slug, request_id=fr.pk)  # type: ignore[attr-defined]


def _invalid(request: HttpRequest, fr: FeatureRequest, **forms: Any) -> HttpResponse:
    response = render(request, "feedback/request_detail.html", _detail_context(request, fr, **forms))
    response.status_code = 400
    return response


def _managed(request: HttpRequest, request_id: int) -> FeatureRequest:
    fr = _get(request_id)
    if not svc.can_manage(request.actor):  # type: ignore[attr-defined]
        raise PermissionDenied("Only admins and leaders change a request.")
    return fr


@require_POST
@org_page(roles=("admin", "leader"))
def edit(request: HttpRequest, request_id: int) -> HttpResponse:
    fr = _managed(request, request_id)
    form = RequestForm(request.POST)
    if not form.is_valid():
        return _invalid(request, fr, edit_form=form)
    data = form.cleaned_data
    try:
        key = svc.normalise_issue_key(data["external_issue_key"])
    except svc.RequestError as refused:
        form.add_error("external_issue_key", str(refused))
        return _invalid(request, fr, edit_form=form)
    fr.title, fr.type, fr.product_area = svc.clean_title(data["title"]), data["type"], data["product_area"].strip()
    fr.description, fr.external_issue_key, fr.external_issue_url = data["description"], key, data["external_issue_url"]
    fr.save(update_fields=["title", "type", "product_area", "description", "external_issue_key", "external_issue_url"])
    messages.success(request, "Request saved.")
    return _back(request, fr)


@require_POST
@org_page(roles=("admin", "leader"))
def change_status(request: HttpRequest, request_id: int) -> HttpResponse:
    fr = _managed(request, request_id)
    form = StatusForm(request.POST)
    if not form.is_valid():
        return _invalid(request, fr, status_form=form)
    try:
        changed = svc.change_status(fr, form.cleaned_data["status"], by=request.user, source="page",
                                    note=form.cleaned_data["note"])  # fmt: skip
    except svc.RequestError as refused:
        form.add_error("status", str(refused))
        return _invalid(request, fr, status_form=form)
    if changed:
        messages.success(request, f"Status set to {fr.get_status_display()}; the linked accounts' CSMs are notified.")
    return _back(request, fr)


@require_POST
@org_page(roles=("admin", "leader"))
def merge(request: HttpRequest, request_id: int) -> HttpResponse:
    fr = _managed(request, request_id)
    choices = list(FeatureRequest.objects.filter(merged_into__isnull=True).exclude(pk=fr.pk).values_list("pk", "title"))
    form = MergeForm(request.POST, choices=choices)
    if not form.is_valid():
        return _invalid(request, fr, merge_form=form)
    survivor = _get(form.cleaned_data["into"])
    try:
        svc.merge_requests(fr, survivor, by=request.user)
    except svc.RequestError as refused:
        form.add_error("into", str(refused))
        return _invalid(request, fr, merge_form=form)
    messages.success(request, f"Merged into “{survivor.title}”; every account link moved there.")
    return _back(request, survivor)


def _find_account(value: str) -> tuple[Account | None, str]:
    value = value.strip()
    matches = list(Account.objects.filter(Q(external_id=value) | Q(name__iexact=value)).select_related("owner")[:2])
    if not matches:
        return None, "No account has this external id or name."
    if len(matches) > 1:
        return None, "Several accounts match; use the external id."
    return matches[0], ""


@require_POST
@org_page(roles=WRITERS)
def add_link(request: HttpRequest, request_id: int) -> HttpResponse:
    fr = _get(request_id)
    form = LinkForm(request.POST)
    if not form.is_valid():
        return _invalid(request, fr, link_form=form)
    account, problem = _find_account(form.cleaned_data["account"])
    if account is None:
        form.add_error("account", problem)
        return _invalid(request, fr, link_form=form)
    if not request.actor.can_write_account(account):  # type: ignore[attr-defined]
        form.add_error("account", "You can only link accounts in your book.")
        return _invalid(request, fr, link_form=form)
    data = {k: v for k, v in form.cleaned_data.items() if k != "account"}
    try:
        _link, created = svc.link_account(fr, account, requested_by=request.user, **data)
    except svc.RequestError as refused:
        form.add_error(refused.field if refused.field in form.fields else None, str(refused))
        return _invalid(request, fr, link_form=form)
    messages.success(request, f"{account.name} {'linked' if created else 'link updated'}.")
    return _back(request, fr)


@require_POST
@org_page(roles=WRITERS)
def remove_link(request: HttpRequest, request_id: int, link_id: int) -> HttpResponse:
    fr = _get(request_id)
    link = FeatureRequestLink.objects.select_related("account").filter(pk=link_id, request=fr).first()
    if link is None:
        raise Http404("No such link")
    if not request.actor.can_write_account(link.account):  # type: ignore[attr-defined]
        raise PermissionDenied("You can only unlink accounts in your book.")
    svc.unlink_account(link)
    messages.success(request, f"{link.account.name} unlinked.")
    return _back(request, fr)


# --- Account 360 ----------------------------------------------------------------------------------


def _open_request_choices() -> list[tuple[int, str]]:
    return [
        (pk, f"#{pk} {title}")
        for pk, title in FeatureRequest.objects.filter(
            merged_into__isnull=True, status__in=["new", "under_review", "planned"]
        )
        .order_by("title")
        .values_list("pk", "title")[:300]
    ]


def account_requests(request: HttpRequest, account: Account) -> dict[str, Any]:
    """Account 360's feature request panel: the account's requests, and the form when the actor may write it
    (two queries, three with the form)."""
    links = list(svc.requests_for_account(account))
    can_add = request.actor.can_write_account(account)  # type: ignore[attr-defined]
    form = AccountRequestForm(request_choices=_open_request_choices()) if can_add else None
    return {"request_links": links, "request_form": form}


@require_POST
@org_page(roles=WRITERS)
def from_account(request: HttpRequest, account_id: int) -> HttpResponse:
    """Account 360's form: link the account to a request, or create one with the account linked."""
    account = Account.objects.filter(pk=account_id).select_related("owner").first()
    if account is None:
        raise Http404("No such account")
    if not request.actor.can_write_account(account):  # type: ignore[attr-defined]
        raise PermissionDenied("You can only add requests for accounts in your book.")
    form = AccountRequestForm(request.POST, request_choices=_open_request_choices())
    back = reverse("account-detail", args=[request.organization.slug, account.pk]) + "#feature-requests"  # type: ignore[attr-defined]
    if not form.is_valid():
        errors = "; ".join(f"{k}: {' '.join(v)}" if k != "__all__" else " ".join(v) for k, v in form.errors.items())
        messages.error(request, f"The request was not added. {errors}")
        return redirect(back)
    data = form.cleaned_data
    try:
        with transaction.atomic():  # a new request whose link is refused is not kept
            if data["request"]:
                fr = _get(data["request"])
            else:
                fr = svc.create_request(request.organization, title=data["title"], type=data["type"] or "feature",  # type: ignore[attr-defined]
                                        product_area=data["product_area"], by=request.user)  # fmt: skip
            svc.link_account(fr, account, requested_by=request.user, importance=data["importance"],
                             comment=data["comment"], blocked_renewal_id=data["blocked_renewal_id"],
                             blocked_deal=data["blocked_deal"])  # fmt: skip
    except svc.RequestError as refused:
        messages.error(request, f"The request was not added. {refused}")
        return redirect(back)
    messages.success(request, f"{account.name} is linked to “{fr.title}”.")
    return redirect(back)
