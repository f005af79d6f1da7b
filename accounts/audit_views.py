"""Admin → Audit log (``/o/<slug>/admin/audit/``): who changed which configuration, when and why, with the
field-by-field changes; filtered like ``/api/v1/audit-log/`` (the same filterset) and exported as CSV
(``?export=csv``: every filtered row, formula-like cells neutralised by :mod:`cs_platform.exports`)."""

from __future__ import annotations

import json
from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from cs_platform.choices import Role
from cs_platform.exports import chunked, csv_response
from cs_platform.models import AuditEntry
from cs_platform.pages import org_page

from .filtersets import AuditEntryFilterSet

PAGE_SIZE = 50
CSV_COLUMNS = [
    "occurred_at", "action", "subject_type", "subject_id", "subject_label", "actor", "note", "changes", "data",
]  # fmt: skip


def _value_text(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@org_page(roles=[Role.ADMIN])
@require_GET
def admin_audit(request: HttpRequest) -> HttpResponse:
    """The audit log, newest first, 50 a page; filters ``action``, ``subject_type``, ``date_after``,
    ``date_before`` (days in the organization's time zone)."""
    entries = AuditEntry.objects.select_related("actor").order_by("-occurred_at", "-id")
    filterset = AuditEntryFilterSet(request.GET or None, queryset=entries, request=request)
    rows = filterset.qs if filterset.is_bound and filterset.is_valid() else entries
    if request.GET.get("export") == "csv":

        def lines() -> Any:
            for chunk in chunked(rows.select_related(None).values_list(
                "occurred_at", "action", "subject_type", "subject_id", "subject_label", "actor_label", "note",
                "changes", "data",
            )):  # fmt: skip
                for occurred_at, *rest in chunk:
                    yield [occurred_at.isoformat(), *rest]

        filename = f"{request.organization.slug}-audit-log-{timezone.localdate().isoformat()}.csv"
        return csv_response(filename, CSV_COLUMNS, lines, organization=request.organization)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    for entry in page.object_list:
        entry.change_rows = [
            {**row, "before": _value_text(row.get("before")), "after": _value_text(row.get("after"))}
            for row in (entry.changes or [])
            if isinstance(row, dict)
        ]
    choices = AuditEntry.objects.order_by().values_list("action", "subject_type").distinct()
    actions = sorted({a for a, _ in choices})
    subject_types = sorted({t for _, t in choices})
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("export", None)
    context = {
        "page": page,
        "entries": page.object_list,
        "filterset": filterset,
        "actions": actions,
        "subject_types": subject_types,
        "selected": {
            "action": request.GET.get("action", ""),
            "subject_type": request.GET.get("subject_type", ""),
            "date_after": request.GET.get("date_after", ""),
            "date_before": request.GET.get("date_before", ""),
        },
        "filter_errors": filterset.errors if filterset.is_bound else {},
        "export_query": query.urlencode(),
        "admin_tab": "audit",
    }
    return render(request, "admin/audit.html", context, status=400 if context["filter_errors"] else 200)
