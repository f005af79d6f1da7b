"""Ticket services: the helpdesk webhook's upsert by external id, and the tickets tied to an issue key.

Tickets are a health signal (open P1s, volume); saving one through the ORM fires the debounced health
recompute (``health.triggers``). The feature request page shows the tickets carrying its issue key through
feedback's section seam (:func:`request_tickets_section`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime

from accounts.models import Account

from .models import Ticket, TicketPriority, TicketStatus

__all__ = ["TicketInputError", "UpsertResult", "parse_helpdesk_ticket", "request_tickets_section", "upsert_ticket"]

FIELDS = ("account_id", "subject", "priority", "status", "opened_at", "resolved_at", "issue_key")


class TicketInputError(ValueError):
    """The payload is not a valid ticket: ``errors`` maps each field to its problem."""

    def __init__(self, errors: dict[str, str], status: int = 400) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors, self.status = errors, status


@dataclass(frozen=True)
class UpsertResult:
    ticket: Ticket
    outcome: str  # "created" | "updated" | "unchanged" | "stale"


def _moment(value: Any, name: str, errors: dict[str, str], *, required: bool) -> dt.datetime | None:
    if value in (None, ""):
        if required:
            errors[name] = "required (an ISO-8601 date-time)"
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        errors[name] = "must be an ISO-8601 date-time such as 2026-11-02T09:00:00Z"
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def _text(value: Any, name: str, errors: dict[str, str], *, limit: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[name] = "must be a string"
        return ""
    value = value.strip()
    if required and not value:
        errors[name] = "required"
    elif len(value) > limit:
        errors[name] = f"at most {limit} characters"
    return value


def parse_helpdesk_ticket(organization_id: int, data: Any) -> tuple[str, dict[str, Any]]:
    """Validate the helpdesk payload (docs/api.md, "Helpdesk webhook") → (external id, model values).
    Raises :class:`TicketInputError` with every problem at once (an unknown account is a 422)."""
    if not isinstance(data, dict) or not isinstance(data.get("ticket"), dict):
        raise TicketInputError({"ticket": 'the body must be a JSON object with a "ticket" object'})
    raw = data["ticket"]
    unknown = sorted(set(raw) - {"id", "account_external_id", "subject", "priority", "status", "opened_at",
                                 "resolved_at", "issue_key", "updated_at"})  # fmt: skip
    errors: dict[str, str] = dict.fromkeys(unknown, "unknown field")
    external_id = _text(raw.get("id"), "id", errors, limit=120, required=True)
    account_ref = _text(raw.get("account_external_id"), "account_external_id", errors, limit=120, required=True)
    values: dict[str, Any] = {
        "subject": _text(raw.get("subject"), "subject", errors, limit=300),
        "issue_key": _text(raw.get("issue_key"), "issue_key", errors, limit=64).upper(),
        "opened_at": _moment(raw.get("opened_at"), "opened_at", errors, required=True),
        "resolved_at": _moment(raw.get("resolved_at"), "resolved_at", errors, required=False),
        "updated_at": _moment(raw.get("updated_at"), "updated_at", errors, required=False),
    }
    priority = raw.get("priority", TicketPriority.P3)
    if priority not in TicketPriority.values:
        errors["priority"] = f"must be one of {', '.join(TicketPriority.values)}"
    status = raw.get("status", TicketStatus.OPEN)
    if status not in TicketStatus.values:
        errors["status"] = f"must be one of {', '.join(TicketStatus.values)}"
    values.update(priority=priority, status=status)
    if errors:
        raise TicketInputError(errors)
    account_id = (
        Account.all_orgs.filter(organization_id=organization_id, external_id=account_ref)
        .values_list("pk", flat=True)
        .first()
    )
    if account_id is None:
        raise TicketInputError({"account_external_id": f"no account has the external id {account_ref!r}"}, 422)
    values["account_id"] = account_id
    return external_id, values


def upsert_ticket(organization_id: int, external_id: str, values: dict[str, Any]) -> UpsertResult:
    """Create the ticket with this external id, or update it; a repeat of the same values changes nothing
    (no save, so no recompute). Two deliveries creating the same ticket at once: the second becomes an update.

    **Out of order.** With ``values["updated_at"]`` (the helpdesk's moment of the change), a delivery older
    than the ticket's stored ``updated_at`` changes nothing and answers ``stale``: helpdesks retry and
    deliver concurrently, so an older state may arrive after a newer one. The row is locked while compared,
    so two deliveries at once apply in order. A delivery without ``updated_at`` is applied (the last one
    wins) and leaves the stored moment as it is."""
    try:
        return _upsert(organization_id, external_id, values)
    except IntegrityError:
        return _upsert(organization_id, external_id, values)


def _upsert(organization_id: int, external_id: str, values: dict[str, Any]) -> UpsertResult:
    with transaction.atomic():
        ticket = (
            Ticket.all_orgs.select_for_update().filter(organization_id=organization_id, external_id=external_id).first()
        )
        if ticket is None:
            ticket = Ticket.all_orgs.create(organization_id=organization_id, external_id=external_id, **values)
            return UpsertResult(ticket, "created")
        moment = values.get("updated_at")
        if moment is not None and ticket.updated_at is not None and moment < ticket.updated_at:
            return UpsertResult(ticket, "stale")
        fields = (*FIELDS, "updated_at") if moment is not None else FIELDS
        changed = [name for name in fields if getattr(ticket, name) != values[name]]
        if not changed:
            return UpsertResult(ticket, "unchanged")
        for name in changed:
            setattr(ticket, name, values[name])
        ticket.save(update_fields=changed)
        return UpsertResult(ticket, "updated")


def request_tickets_section(request: Any, feature_request: Any) -> dict[str, Any]:
    """The feature request page's "Helpdesk tickets" section: tickets carrying its issue key (one query)."""
    key = feature_request.external_issue_key
    tickets = []
    if key:
        tickets = list(
            Ticket.all_orgs.filter(organization_id=feature_request.organization_id, issue_key=key)
            .select_related("account")
            .order_by("-opened_at")[:50]
        )
    return {"linked_tickets": tickets, "issue_key": key}
