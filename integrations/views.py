"""Admin → Integrations → Connectors: ``/o/<slug>/admin/integrations/connectors/`` (admins only).

Connect a vendor (kind, name, base URL, credentials — password inputs, never filled back), test it,
pause it; per object: the mapping editor (JSON with the connector's defaults shown, errors by path),
interval, pause, dry run, run now, next run; the sync history with each run's per-record errors.
No script: plain forms (CSP-clean), usable at 390×844.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.db import IntegrityError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from cs_platform.choices import Role
from cs_platform.outbound import host_of
from cs_platform.pages import org_page

from . import services
from .choices import RunMode
from .connectors.base import connector_choices, get_connector, registry
from .email_capture import IMAP_KIND
from .models import Connection, ObjectSync, SyncDeletion, SyncRecordError, SyncRun

admin_page = org_page(roles=[Role.ADMIN])
HISTORY = 20


def _credential_keys() -> list[tuple[str, str]]:
    """Every connector's credential keys (``[(key, "HubSpot, …")]``): one password input each."""
    keys: dict[str, list[str]] = {}
    for kind, cls in sorted(registry().items()):
        for key in cls.credential_fields:
            keys.setdefault(key, []).append(cls.label or kind)
    return [(key, ", ".join(labels)) for key, labels in keys.items()]


class ConnectForm(forms.Form):
    kind = forms.ChoiceField(choices=connector_choices)
    name = forms.CharField(max_length=120)
    base_url = forms.URLField(
        max_length=300, required=False, assume_scheme="https", help_text="Empty: the vendor's default API root."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = connector_choices()
        for key, labels in _credential_keys():
            self.fields[f"cred_{key}"] = forms.CharField(
                label=key.replace("_", " ").capitalize(),
                required=False,
                max_length=2000,
                widget=forms.PasswordInput(render_value=False),
                help_text=f"For {labels}. Stored encrypted; never shown.",
            )

    def clean_base_url(self) -> str:
        url = self.cleaned_data.get("base_url") or ""
        problem = services.base_url_problem(url) if url else None
        if problem:
            raise forms.ValidationError(problem)
        return url

    def credentials(self) -> dict[str, str]:
        cls = get_connector(self.cleaned_data["kind"])
        return {key: self.cleaned_data.get(f"cred_{key}", "") for key in cls.credential_fields}


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    connections = list(
        Connection.objects.exclude(kind=IMAP_KIND)
        .prefetch_related(Prefetch("syncs", queryset=ObjectSync.all_orgs.order_by("object_name")))
        .order_by("name")
    )
    for connection in connections:
        connection.host = host_of(connection.base_url)
        cls = registry().get(connection.kind)
        connection.label = cls.label if cls else connection.kind
        connection.expected_keys = [
            (key, key.replace("_", " ").capitalize()) for key in (cls.credential_fields if cls else ())
        ]
    return {"connections": connections, "admin_tab": "connectors", "org": request.organization, **extra}


def _render(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@admin_page
@require_http_methods(["GET", "POST"])
def connectors(request: HttpRequest) -> HttpResponse:
    """The connections and their object syncs; the connect form."""
    form = ConnectForm()
    status = 200
    if request.method == "POST":
        form = ConnectForm(request.POST)
        if form.is_valid():
            try:
                connection = services.create_connection(
                    request.organization, kind=form.cleaned_data["kind"], name=form.cleaned_data["name"],
                    base_url=form.cleaned_data["base_url"], credentials=form.credentials(), user=request.user,
                )  # fmt: skip
            except IntegrityError:
                form.add_error("name", "A connection of this organization already has this name.")
            else:
                messages.success(request, f"{connection.name} connected. Test it, then run a dry run.")
                return redirect("admin-connectors", org_slug=request.organization.slug)
        status = 400
    return _render(request, "integrations/connectors.html", _context(request, form=form), status)


@admin_page
@require_POST
def connection_action(request: HttpRequest, connection_id: int) -> HttpResponse:
    connection = get_object_or_404(Connection.objects.exclude(kind=IMAP_KIND), pk=connection_id)
    action = request.POST.get("action")
    if action == "test":
        ok, message = services.test_connection(connection)
        (messages.success if ok else messages.error)(request, message)
    elif action in ("pause", "resume"):
        services.update_connection(connection, paused=action == "pause")
        messages.success(request, f"{connection.name} {'paused' if action == 'pause' else 'resumed'}.")
    elif action == "credentials":
        cls = get_connector(connection.kind)
        creds = {key: request.POST.get(f"cred_{key}", "") for key in cls.credential_fields}
        if not any(creds.values()):
            messages.error(request, "Enter the new credentials; the stored ones are never shown.")
        else:
            services.update_connection(connection, credentials=creds)
            messages.success(request, "Credentials replaced. Test the connection.")
    elif action == "delete":
        name = connection.name
        connection.delete()
        messages.success(request, f"{name} deleted with its syncs and their history.")
    return redirect("admin-connectors", org_slug=request.organization.slug)


class SyncForm(forms.Form):
    mapping = forms.CharField(widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false"}), required=False)
    interval_minutes = forms.IntegerField(min_value=5, max_value=60 * 24 * 7)


@admin_page
@require_http_methods(["GET", "POST"])
def sync_detail(request: HttpRequest, sync_id: int) -> HttpResponse:
    """One object sync: mapping editor (defaults shown), interval, runs with their per-record errors."""
    sync = get_object_or_404(ObjectSync.objects.select_related("connection"), pk=sync_id)
    spec = get_connector(sync.connection.kind).objects[sync.object_name]
    initial_mapping = json.dumps(sync.mapping, indent=2) if sync.mapping else ""
    form = SyncForm(initial={"mapping": initial_mapping, "interval_minutes": sync.interval_minutes})
    problems: list[dict[str, str]] = []
    status = 200
    if request.method == "POST":
        form = SyncForm(request.POST)
        if form.is_valid():
            text = form.cleaned_data["mapping"].strip()
            try:
                mapping = json.loads(text) if text else {}
            except ValueError as exc:
                problems = [{"path": "", "message": f"not valid JSON: {exc}"}]
            else:
                problems = services.mapping_problems(sync, mapping)
            if not problems:
                sync.mapping = mapping
                sync.interval_minutes = form.cleaned_data["interval_minutes"]
                sync.save(update_fields=["mapping", "interval_minutes"])
                messages.success(request, "Mapping saved." if mapping else "Mapping reset to the defaults.")
                return redirect("admin-connector-sync", org_slug=request.organization.slug, sync_id=sync.pk)
        status = 400
    runs = list(
        SyncRun.objects.filter(sync=sync)
        .prefetch_related(
            Prefetch("record_errors", queryset=SyncRecordError.all_orgs.order_by("pk")),
            Prefetch("deletions", queryset=SyncDeletion.all_orgs.order_by("pk")),
        )
        .order_by("-created_at", "-pk")[:HISTORY]
    )
    context = _context(
        request, sync=sync, spec=spec, form=form, problems=problems, runs=runs,
        default_mapping=json.dumps(spec.default_mapping, indent=2),
    )  # fmt: skip
    return _render(request, "integrations/sync.html", context, status)


@admin_page
@require_POST
def sync_action(request: HttpRequest, sync_id: int) -> HttpResponse:
    sync = get_object_or_404(ObjectSync.objects.select_related("connection"), pk=sync_id)
    action = request.POST.get("action")
    if action in ("run", "dry_run"):
        mode = RunMode.DRY_RUN if action == "dry_run" else RunMode.SYNC
        try:
            services.start_run(sync, mode=mode, user=request.user)
        except services.RunRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Dry run queued: it writes nothing." if action == "dry_run" else "Sync queued.")
    elif action == "push":
        try:
            if reason := services.push_refusal(sync):  # a sync that only pulls is not pushed from the page
                raise services.RunRefused(reason)
            services.start_run(sync, mode=RunMode.PUSH, user=request.user)
        except services.RunRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Push queued: only the accounts changed since the last push are sent to "
                                      f"{sync.connection.name}.")  # fmt: skip
    elif action in ("pause", "resume"):
        ObjectSync.objects.filter(pk=sync.pk).update(paused=action == "pause")
        messages.success(request, f"{sync.object_name} {'paused' if action == 'pause' else 'resumed'}.")
    if request.POST.get("back") == "connectors":  # the Connectors page's "Push now" comes back to it
        return redirect("admin-connectors", org_slug=request.organization.slug)
    return redirect("admin-connector-sync", org_slug=request.organization.slug, sync_id=sync.pk)
