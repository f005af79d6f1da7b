"""Viewsets of the health-signal API: a queryset, a serializer and a filterset each; the base does the rest."""

from __future__ import annotations

from typing import ClassVar

from cs_platform.api.viewsets import OrgScopedViewSet

from .. import filtersets
from ..models import Invoice, Ticket, UsageMetric
from . import serializers as s


class UsageMetricViewSet(OrgScopedViewSet):
    """``/api/v1/usage-metrics/``: daily per-account usage, read-only (written by the rollups and the
    ``usage`` CSV import). Writes answer ``405`` for every id, so nothing about other rows is revealed."""

    queryset = UsageMetric.all_orgs.select_related("account")
    serializer_class = s.UsageMetricSerializer
    filterset_class = filtersets.UsageMetricFilterSet
    http_method_names: ClassVar[list[str]] = ["get", "head", "options"]
    ordering_fields: ClassVar[list[str]] = ["date", "metric", "value", "account__external_id"]
    ordering: ClassVar[list[str]] = ["date", "metric"]


class TicketViewSet(OrgScopedViewSet):
    queryset = Ticket.all_orgs.select_related("account")
    serializer_class = s.TicketSerializer
    filterset_class = filtersets.TicketFilterSet
    ordering_fields: ClassVar[list[str]] = ["opened_at", "resolved_at", "priority", "status", "external_id"]
    ordering: ClassVar[list[str]] = ["-opened_at"]
    upsert_field = "external_id"


class InvoiceViewSet(OrgScopedViewSet):
    queryset = Invoice.all_orgs.select_related("account")
    serializer_class = s.InvoiceSerializer
    filterset_class = filtersets.InvoiceFilterSet
    ordering_fields: ClassVar[list[str]] = ["due_date", "paid_at", "amount", "external_id"]
    ordering: ClassVar[list[str]] = ["-due_date"]
    upsert_field = "external_id"
