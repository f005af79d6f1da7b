"""Admin page for outbound webhooks: ``/o/<slug>/admin/webhooks/`` (admins only)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import OuterRef, Prefetch, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.choices import Role
from cs_platform.pages import org_page

from . import chat
from .forms import ChatChannelForm, ChatReceivesForm, WebhookEndpointForm
from .models import ChatChannel, ChatDelivery, WebhookAttempt, WebhookDelivery, WebhookEndpoint
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
    return _webhooks_page(request, form=form, status=status)


def _webhooks_page(request: HttpRequest, *, form: Any = None, chat_form: Any = None, status: int = 200) -> HttpResponse:
    endpoints = WebhookEndpoint.objects.select_related("created_by").order_by("-is_active", "-created_at")
    latest = ChatDelivery.objects.filter(channel=OuterRef("pk")).order_by("-created_at", "-pk")
    channels = ChatChannel.objects.annotate(
        last_kind=Subquery(latest.values("message_kind")[:1]),
        last_status=Subquery(latest.values("status")[:1]),
        last_error=Subquery(latest.values("last_error")[:1]),
    ).order_by("-is_active", "name")
    channels = list(channels)
    for c in channels:  # each channel's own "Receives" form (prefixed: the checkbox ids stay unique)
        c.receives_form = ChatReceivesForm(
            prefix=f"ch{c.pk}", initial={"daily_digest": c.daily_digest, "notification_kinds": c.notification_kinds}
        )
    context = {
        "endpoints": endpoints, "form": form or WebhookEndpointForm(), "admin_tab": "webhooks",
        "org": request.organization, "channels": channels,
        "chat_form": chat_form or ChatChannelForm(organization=request.organization),
    }  # fmt: skip
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


# --- Chat channels (Slack, Teams): a section of the same page ------------------------------------------------


@admin_page
@require_POST
def admin_chat_add(request: HttpRequest) -> HttpResponse:
    form = ChatChannelForm(request.POST, organization=request.organization)
    if not form.is_valid():
        return _webhooks_page(request, chat_form=form, status=400)
    channel = chat.create_channel(request.organization, actor=request.user, **form.cleaned_data)
    messages.success(request, f"Chat channel {channel.name} added. Send a test message to check it.")
    return redirect("admin-webhooks", org_slug=request.organization.slug)


@admin_page
@require_POST
def admin_chat_test(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = get_object_or_404(ChatChannel.objects, pk=channel_id)
    try:
        chat.send_test(channel, user=request.user)
    except SendTestThrottled as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Test message to {channel.name} queued; its result shows in the list.")
    return redirect("admin-webhooks", org_slug=request.organization.slug)


@admin_page
@require_POST
def admin_chat_receives(request: HttpRequest, channel_id: int) -> HttpResponse:
    """Change what an existing channel receives: the daily digest and the notification kinds."""
    channel = get_object_or_404(ChatChannel.objects, pk=channel_id)
    form = ChatReceivesForm(request.POST, prefix=f"ch{channel.pk}")
    if not form.is_valid():
        messages.error(request, f"{channel.name} was not changed: " + "; ".join(
            str(e) for errors in form.errors.values() for e in errors))  # fmt: skip
        return _webhooks_page(request, status=400)
    chat.update_channel(channel, actor=request.user, **form.cleaned_data)
    messages.success(request, f"Chat channel {channel.name} now receives what you chose.")
    return redirect("admin-webhooks", org_slug=request.organization.slug)


@admin_page
@require_POST
def admin_chat_toggle(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = get_object_or_404(ChatChannel.objects, pk=channel_id)
    chat.update_channel(channel, actor=request.user, is_active=not channel.is_active)
    state = "enabled" if channel.is_active else "disabled; pending retries stop"
    messages.success(request, f"Chat channel {channel.name} {state}.")
    return redirect("admin-webhooks", org_slug=request.organization.slug)


@admin_page
@require_POST
def admin_chat_delete(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = get_object_or_404(ChatChannel.objects, pk=channel_id)
    name = channel.name
    chat.delete_channel(channel, actor=request.user)
    messages.success(request, f"Chat channel {name} deleted with its delivery log.")
    return redirect("admin-webhooks", org_slug=request.organization.slug)
