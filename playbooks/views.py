"""Admin page for outbound webhooks: ``/o/<slug>/admin/webhooks/`` (admins only)."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.choices import Role
from cs_platform.pages import org_page

from .forms import WebhookEndpointForm
from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .services import SendTestThrottled, generate_secret, send_test

admin_page = org_page(roles=[Role.ADMIN])
LOG_SIZE = 25


@admin_page
@require_http_methods(["GET", "POST"])
def admin_webhooks(request: HttpRequest) -> HttpResponse:
    """List endpoints with their secrets (admins only), register a new one."""
    form = WebhookEndpointForm()
    status = 200
    if request.method == "POST":
        form = WebhookEndpointForm(request.POST)
        if form.is_valid():
            endpoint = WebhookEndpoint.objects.create(
                url=form.cleaned_data["url"],
                description=form.cleaned_data["description"],
                event_types=form.cleaned_data["event_types"],
                secret=generate_secret(),
                created_by=request.user,
            )
            messages.success(request, f"Webhook {endpoint.url} added. Use its secret to verify X-Retain-Signature.")
            return redirect("admin-webhook-detail", org_slug=request.organization.slug, endpoint_id=endpoint.pk)
        status = 400
    endpoints = WebhookEndpoint.objects.select_related("created_by").order_by("-is_active", "-created_at")
    context = {"endpoints": endpoints, "form": form, "admin_tab": "webhooks", "org": request.organization}
    response = render(request, "playbooks/admin_webhooks.html", context, status=status)
    response["Cache-Control"] = "no-store"  # shows signing secrets
    return response


def _log(endpoint: WebhookEndpoint) -> list[WebhookDelivery]:
    return list(
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .prefetch_related(Prefetch("attempt_log", queryset=WebhookAttempt.all_orgs.order_by("number")))
        .order_by("-created_at", "-pk")[:LOG_SIZE]
    )


@admin_page
@require_GET
def admin_webhook_detail(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """One endpoint: its secret, subscriptions, actions, and the delivery log (htmx refreshes it)."""
    endpoint = get_object_or_404(WebhookEndpoint.objects.select_related("created_by"), pk=endpoint_id)
    context = {"endpoint": endpoint, "deliveries": _log(endpoint), "admin_tab": "webhooks", "org": request.organization}
    if request.headers.get("HX-Request"):
        return render(request, "playbooks/_delivery_log.html", context)
    response = render(request, "playbooks/admin_webhook_detail.html", context)
    response["Cache-Control"] = "no-store"
    return response


@admin_page
@require_POST
def admin_webhook_test(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint.objects, pk=endpoint_id)
    try:
        send_test(endpoint, user=request.user)
    except SendTestThrottled as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Test event queued; its delivery appears in the log below.")
    return redirect("admin-webhook-detail", org_slug=request.organization.slug, endpoint_id=endpoint.pk)


@admin_page
@require_POST
def admin_webhook_toggle(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint.objects, pk=endpoint_id)
    endpoint.is_active = not endpoint.is_active
    endpoint.save(update_fields=["is_active"])
    state = "reactivated" if endpoint.is_active else "deactivated; pending retries stop"
    messages.success(request, f"Webhook {endpoint.url} {state}.")
    return redirect("admin-webhook-detail", org_slug=request.organization.slug, endpoint_id=endpoint.pk)


@admin_page
@require_POST
def admin_webhook_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint.objects, pk=endpoint_id)
    url = endpoint.url
    endpoint.delete()
    messages.success(request, f"Webhook {url} deleted with its delivery log.")
    return redirect("admin-webhooks", org_slug=request.organization.slug)
