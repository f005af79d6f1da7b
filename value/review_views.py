"""Business-review pages under ``/o/<slug>/accounts/<id>/reviews/``: the list (start a review), the value
report with its close form, and the report's PDF. Every member reads; the account's writers (its CSM, their
team lead, an admin) start and close reviews. Writes go through :mod:`value.reviews`."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import Account
from cs_platform.pages import org_page

from .api.views import pdf_response
from .choices import ReviewStatus
from .models import BusinessReview
from .report import review_report
from .review_charts import health_line, usage_bars
from .review_forms import CloseReviewForm, NextObjectiveFormSet, StartReviewForm, next_objectives
from .reviews import close_review, default_period, start_review

__all__ = ["account_reviews_panel", "review_detail", "review_pdf", "reviews"]


def _account(account_id: int) -> Account:
    return get_object_or_404(Account.objects.select_related("owner"), pk=account_id)


def _review(account: Account, review_id: int) -> BusinessReview:
    return get_object_or_404(
        BusinessReview.objects.select_related("account__owner", "closed_by", "created_by", "activity"),
        pk=review_id,
        account=account,
    )


def _apply_errors(form: Any, error: ValidationError) -> None:
    for field, messages_ in getattr(error, "message_dict", {"__all__": error.messages}).items():
        form.add_error(field if field in form.fields else None, messages_)


@org_page()
@require_http_methods(["GET", "POST"])
def reviews(request: HttpRequest, account_id: int) -> HttpResponse:
    """The account's reviews, newest period first, and (for its writers) the form to start one."""
    account = _account(account_id)
    can_write = request.actor.can_write_account(account)
    start, end = default_period(request.organization)
    form = StartReviewForm(initial={"period_start": start, "period_end": end})
    status = 200
    if request.method == "POST":
        if not can_write:
            raise PermissionDenied("Only the account's CSM, their team lead or an admin can start a review.")
        form = StartReviewForm(request.POST)
        if form.is_valid():
            try:
                with transaction.atomic():
                    review = start_review(
                        request.organization,
                        account,
                        by=request.actor,
                        kind=form.cleaned_data["kind"],
                        period_start=form.cleaned_data["period_start"],
                        period_end=form.cleaned_data["period_end"],
                    )
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                messages.success(request, f"{review.get_kind_display()} started.")
                return redirect(reverse("value-review", args=[request.organization.slug, account.pk, review.pk]))
        status = 400
    rows = list(
        BusinessReview.objects.filter(account=account).select_related("closed_by").order_by("-period_end", "-pk")
    )
    context = {"account": account, "reviews": rows, "can_write": can_write, "form": form if can_write else None}
    return render(request, "value/reviews.html", context, status=status)


def _detail_context(request: HttpRequest, account: Account, review: BusinessReview, **forms: Any) -> dict[str, Any]:
    report = review_report(request.organization, review)
    can_write = request.actor.can_write_account(account)
    is_open = review.status == ReviewStatus.OPEN
    context: dict[str, Any] = {
        "account": account,
        "review": review,
        "report": report,
        "can_write": can_write,
        "is_open": is_open,
        "usage_chart": usage_bars(report["usage"]["months"], seats=report["usage"]["seats"]),
        "health_chart": health_line(report["health"]["trend"]),
        "next_objectives": (review.snapshot or {}).get("next_objectives", []),
        "next_review_on": (review.snapshot or {}).get("next_review_on"),
    }
    if is_open and can_write:
        context["close_form"] = forms.get("close_form") or CloseReviewForm(initial={"held_on": timezone.localdate()})
        context["objective_formset"] = forms.get("objective_formset") or NextObjectiveFormSet(prefix="next")
    return context


@org_page()
@require_http_methods(["GET", "POST"])
def review_detail(request: HttpRequest, account_id: int, review_id: int) -> HttpResponse:
    """The value report; POST closes the review (the account's writers only)."""
    account = _account(account_id)
    review = _review(account, review_id)
    if request.method == "GET":
        return render(request, "value/review_detail.html", _detail_context(request, account, review))
    if not request.actor.can_write_account(account):
        raise PermissionDenied("Only the account's CSM, their team lead or an admin can close this review.")
    if review.status != ReviewStatus.OPEN:
        # A second submit (another tab, a double click): nothing to do, and nothing was written twice.
        messages.info(request, "This review is closed already.")
        return redirect(reverse("value-review", args=[request.organization.slug, account.pk, review.pk]))
    form = CloseReviewForm(request.POST)
    formset = NextObjectiveFormSet(request.POST, prefix="next")
    if form.is_valid() and formset.is_valid():
        try:
            close_review(
                request.organization,
                review,
                by=request.actor,
                held_on=form.cleaned_data["held_on"],
                summary=form.cleaned_data["summary"],
                next_review_on=form.cleaned_data.get("next_review_on"),
                next_objectives=next_objectives(formset),
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Review closed: logged on the timeline, next objectives set, report frozen.")
            return redirect(reverse("value-review", args=[request.organization.slug, account.pk, review.pk]))
    review.refresh_from_db()
    context = _detail_context(request, account, review, close_form=form, objective_formset=formset)
    return render(request, "value/review_detail.html", context, status=400)


@org_page()
@require_GET
def review_pdf(request: HttpRequest, account_id: int, review_id: int) -> HttpResponse:
    """The value report as a PDF attachment (the snapshot once closed)."""
    account = _account(account_id)
    review = _review(account, review_id)
    return pdf_response(review_report(request.organization, review), request.organization.name)


def account_reviews_panel(request: HttpRequest, account: Account) -> dict[str, Any]:
    """Account 360's "Business reviews" panel: the latest reviews (one query) and whether one can be started."""
    latest = list(
        BusinessReview.objects.filter(account=account).select_related("closed_by").order_by("-period_end", "-pk")[:3]
    )
    return {"business_reviews": latest, "can_start_review": request.actor.can_write_account(account)}
