"""The admins' integrations page (``/o/<slug>/admin/integrations/``): enable the issue tracker and helpdesk
webhooks, read their URL and signing secret (shown once, when made or rotated), map the tracker's statuses
to feature request statuses, and read the log of inbound deliveries with their outcome."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from cs_platform.choices import Role
from cs_platform.pages import org_page
from feedback.models_requests import RequestStatus

from . import inbound
from .models import InboundDelivery, InboundHook, InboundOutcome, InboundSource

LOG_SIZE = 100


def parse_status_map(text: str) -> tuple[dict[str, str], list[str]]:
    """``Done = shipped`` lines → a mapping; returns the problems, line by line."""
    mapping: dict[str, str] = {}
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, status = line.partition("=")
        name, status = name.strip(), status.strip().lower().replace(" ", "_")
        if not sep or not name:
            problems.append(f"Line {number}: write it as “Tracker status = request status”.")
        elif status not in RequestStatus.values:
            problems.append(f"Line {number}: {status!r} is not one of {', '.join(RequestStatus.values)}.")
        elif len(name) > 80:
            problems.append(f"Line {number}: a tracker status has at most 80 characters.")
        else:
            mapping[name] = status
    return mapping, problems


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    org = request.organization  # type: ignore[attr-defined]
    hooks = inbound.organization_hooks(org)
    source = request.GET.get("source", "")
    outcome = request.GET.get("outcome", "")
    log = InboundDelivery.objects.order_by("-received_at", "-pk")
    if source in InboundSource.values:
        log = log.filter(source=source)
    if outcome in InboundOutcome.values:
        log = log.filter(outcome=outcome)
    base = settings.PUBLIC_BASE_URL  # the address senders reach (not the one this request came through)
    sources = []
    for value, label in InboundSource.choices:
        hook = hooks[value]
        url_name = "hook-tracker" if value == InboundSource.TRACKER else "hook-helpdesk"
        sources.append({
            "value": value, "label": label, "hook": hook,
            "url": base + reverse(url_name, kwargs={"org_slug": org.slug}),
            "map_text": "\n".join(f"{k} = {v}" for k, v in (hook.status_map or {}).items()) if hook else "",
        })  # fmt: skip
    return {
        "admin_tab": "integrations",
        "org": org,
        "sources": sources,
        "log": list(log[:LOG_SIZE]),
        "log_filters": {"source": source, "outcome": outcome},
        "outcomes": InboundOutcome.choices,
        "source_choices": InboundSource.choices,
        "statuses": RequestStatus.choices,
        **extra,
    }


@org_page(roles=[Role.ADMIN])
def integrations(request: HttpRequest) -> HttpResponse:
    org = request.organization  # type: ignore[attr-defined]
    if request.method != "POST":
        return render(request, "health/admin_integrations.html", _context(request))
    source = request.POST.get("source", "")
    action = request.POST.get("action", "")
    if source not in InboundSource.values:
        return render(request, "health/admin_integrations.html", _context(request), status=400)
    hook = InboundHook.objects.filter(source=source).first()
    label = InboundSource(source).label
    if action == "enable":
        created = hook is None
        hook = inbound.enable_hook(org.pk, source, by=request.user)
        context = _context(
            request, revealed={"source": source, "secret": inbound.hook_secret(hook)} if created else None
        )
        messages.success(request, f"{label} webhook enabled.")
        return render(request, "health/admin_integrations.html", context)
    if hook is None:
        return render(request, "health/admin_integrations.html", _context(request), status=400)
    if action == "rotate":
        secret = inbound.rotate_secret(hook)
        messages.success(request, f"New {label} secret made: the old one no longer works.")
        return render(request, "health/admin_integrations.html",
                      _context(request, revealed={"source": source, "secret": secret}))  # fmt: skip
    if action == "disable":
        hook.is_active = False
        hook.save(update_fields=["is_active"])
        messages.success(request, f"{label} webhook disabled: its deliveries are refused (404).")
    elif action == "map" and source == InboundSource.TRACKER:
        mapping, problems = parse_status_map(request.POST.get("status_map", ""))
        if problems:
            return render(request, "health/admin_integrations.html",
                          _context(request, map_errors=problems, map_text=request.POST.get("status_map", "")),
                          status=400)  # fmt: skip
        hook.status_map = mapping
        hook.save(update_fields=["status_map"])
        messages.success(request, "Status mapping saved.")
    else:
        return render(request, "health/admin_integrations.html", _context(request), status=400)
    return redirect("admin-integrations", org_slug=org.slug)
