"""Connector webhooks: ``POST /hooks/<org-slug>/stripe/`` — Stripe's signed events (docs/integrations.md
"Stripe", docs/api.md "Inbound webhooks").

Checks, in order (the pattern of ``health.inbound``): ``POST`` only (``405``); the organization has an
active (not paused) Stripe connection (``404``, the same answer for an unknown organization); body at most
256 KB (``413``); UTF-8 and the ``Stripe-Signature`` verified by ``stripe.Webhook.construct_event`` under
one of those connections' signing secrets, timestamp within 5 minutes (``400 bad_signature``); rate limit
``STRIPE_WEBHOOK_RATE`` per organization (default ``600/min``; ``429`` with ``Retry-After``, Stripe
retries); JSON (``400 invalid_json``) and shape (``400 invalid_payload``). A refused request changes nothing;
refusals before the signature is verified are counted against the client address's own budget.

Processing is **synchronous**, in one transaction with the event's :class:`WebhookEvent` row (unique per
connection and event id): the answer ``200`` means the event is committed; a replay finds the row
(``duplicate``, nothing changed); a failure (database down) answers ``500`` and Stripe retries it for up
to three days. Nothing is queued, so a dead worker or Redis outage loses nothing (the rate limit fails
open without Redis; the health recompute that follows is scheduled after commit and recovered by the
nightly recompute if it cannot be queued).

Events: ``invoice.*`` (see ``connectors.stripe.INVOICE_EVENTS``) → one ``invoices`` import row through
``cs_platform.imports.engine.import_rows`` (the kind's validation, upsert by external id, hooks);
``customer.created``/``customer.updated`` → the customer's account link (:class:`VendorCustomer`);
anything else → ``ignored`` (recorded, answered 200). An invoice matches an account by, in order: the
invoice's metadata ``retain_account_external_id``/``account_external_id``; the customer's (learned from
customer events, or an expanded ``customer`` object); the email domain of ``customer_email`` when exactly
one account has it. An unmatched invoice, or a row the import kind refuses, is a
:class:`SyncRecordError` on the connection's **webhook run of the day** (a ``SyncRun`` with trigger
``webhook`` on the ``invoices`` object sync: the admin's sync history lists it with its counters).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import stripe
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from accounts.models import Account, Organization
from cs_platform.imports.engine import import_rows
from cs_platform.ratelimit import count, parse_rate
from cs_platform.tenancy import org_scope

from .choices import JobStatus, RunMode, RunTrigger, WebhookOutcome
from .connectors.stripe import CUSTOMER_EVENTS, INVOICE_EVENTS, account_hint, invoice_row
from .models import Connection, ObjectSync, SyncRecordError, SyncRun, VendorCustomer, WebhookEvent

__all__ = ["MAX_BODY_BYTES", "TOLERANCE_SECONDS", "handle_stripe_event", "stripe_hook"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
TOLERANCE_SECONDS = 300  # Stripe's own default for construct_event
INVOICE_COLUMNS = ["external_id", "account_external_id", "due_date", "amount", "paid_at"]


class Refused(Exception):
    def __init__(self, status: int, detail: str, code: str) -> None:
        super().__init__(detail)
        self.status, self.detail, self.code = status, detail, code


def _answer(status: int, body: dict[str, Any], retry_after: int | None = None) -> JsonResponse:
    response = JsonResponse(body, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _rate() -> tuple[int, int]:
    return parse_rate(getattr(settings, "STRIPE_WEBHOOK_RATE", "600/min"), name="STRIPE_WEBHOOK_RATE")


def _verify(request: HttpRequest, connections: list[Connection], body: bytes) -> Connection:
    """The connection whose signing secret signed the body (``construct_event``), or Refused."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "The body is not UTF-8 JSON.", "invalid_json") from None
    header = request.META.get("HTTP_STRIPE_SIGNATURE", "")
    if not header:
        raise Refused(400, "Unsigned request: Stripe sends a Stripe-Signature header.", "bad_signature")
    reason = "The signature does not match the body (wrong signing secret, or the body was altered)."
    for connection in connections:
        secret = str(connection.credentials.get("signing_secret") or "")
        if not secret:
            continue
        try:
            stripe.Webhook.construct_event(text, header, secret, tolerance=TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError as exc:
            if "tolerance" in str(exc):
                raise Refused(
                    400,
                    "The signature's timestamp is more than 5 minutes old (a replayed delivery?).",
                    "stale_signature",
                ) from None
            continue
        except (TypeError, UnicodeEncodeError):  # a non-ASCII signature: compare_digest refuses it
            continue
        except ValueError:  # signed, but not JSON: construct_event parses after verifying
            return connection
        except Exception:  # signed JSON that is not an event object (construct_from): shape checked below
            return connection
        return connection
    raise Refused(400, reason, "bad_signature")


def _event(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8"))
    except ValueError:
        raise Refused(400, "The body is not valid JSON.", "invalid_json") from None
    if not isinstance(data, dict):
        raise Refused(400, "The body must be a Stripe event object.", "invalid_payload")
    try:  # what Postgres cannot store: NUL characters, unpaired UTF-16 surrogates
        stored = json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(400, "The body holds an unpaired UTF-16 surrogate.", "invalid_payload") from None
    if b"\\u0000" in stored or b"\x00" in stored:
        raise Refused(400, "The body holds a NUL character.", "invalid_payload")
    event_id, event_type = data.get("id"), data.get("type")
    obj = (data.get("data") or {}).get("object") if isinstance(data.get("data"), dict) else None
    if not isinstance(event_id, str) or not event_id or len(event_id) > 120:
        raise Refused(400, "The event has no id.", "invalid_payload")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 80:
        raise Refused(400, "The event has no type.", "invalid_payload")
    if not isinstance(obj, dict):
        raise Refused(400, "The event has no data.object.", "invalid_payload")
    created = data.get("created")
    if "created" in data and (isinstance(created, bool) or not isinstance(created, int)):
        raise Refused(400, "The event's created is not a Unix timestamp.", "invalid_payload")
    return data


def _receive(request: HttpRequest, org_slug: str) -> JsonResponse:
    if request.method != "POST":
        response = _answer(405, {"detail": "Use POST.", "code": "method_not_allowed"})
        response["Allow"] = "POST"
        return response
    # The organization first (not a tenant table), then everything else inside its scope: under Postgres
    # row-level security (cs_platform.rls) a tenant row is visible, and writable, only there.
    organization = Organization.objects.filter(slug=org_slug).first()
    if organization is None:
        return _answer(404, {"detail": "No Stripe connection is active here.", "code": "not_found"})
    with org_scope(organization):
        return _receive_for(request, organization)


def _receive_for(request: HttpRequest, organization: Organization) -> JsonResponse:
    connections = list(Connection.objects.for_org(organization).filter(kind="stripe", paused=False).order_by("pk"))
    if not connections:
        return _answer(404, {"detail": "No Stripe connection is active here.", "code": "not_found"})
    limit, period = _rate()
    try:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
            if length > MAX_BODY_BYTES:
                raise Refused(413, f"The body exceeds {MAX_BODY_BYTES // 1024} KB.", "payload_too_large")
            body = request.body
        except ValueError:
            raise Refused(400, "Content-Length must be a number of bytes.", "invalid_payload") from None
        except RequestDataTooBig:
            raise Refused(413, "The body exceeds the server's upload limit.", "payload_too_large") from None
        if len(body) > MAX_BODY_BYTES:
            raise Refused(413, f"The body exceeds {MAX_BODY_BYTES // 1024} KB.", "payload_too_large")
        connection = _verify(request, connections, body)
    except Refused as refused:
        address = str(request.META.get("REMOTE_ADDR") or "unknown")[:64]
        wait = count(f"retain:stripehook:unverified:{organization.pk}:{address}", limit, period).wait
        if wait is not None:
            return _answer(429, {"detail": f"Too many requests; retry in {wait} s.", "code": "throttled"}, wait)
        return _answer(refused.status, {"detail": refused.detail, "code": refused.code})
    wait = count(f"retain:stripehook:{organization.pk}", limit, period).wait
    if wait is not None:
        return _answer(429, {"detail": f"Too many requests; retry in {wait} s.", "code": "throttled"}, wait)
    try:
        event = _event(body)
    except Refused as refused:
        return _answer(refused.status, {"detail": refused.detail, "code": refused.code})
    outcome, reference, reason = handle_stripe_event(connection, event)
    answer = {"outcome": outcome, "event": event["id"], "type": event["type"]}
    if reference:
        answer["invoice" if event["type"].startswith("invoice.") else "customer"] = reference
    if reason:
        answer["reason"] = reason
    return _answer(200, answer)


@csrf_exempt
def stripe_hook(request: HttpRequest, org_slug: str) -> JsonResponse:
    try:
        return _receive(request, org_slug)
    except Exception:
        logger.exception("unexpected error in the Stripe webhook")
        return _answer(500, {"detail": "Internal error; nothing was changed. Stripe retries.", "code": "internal"})


# --- processing ----------------------------------------------------------------------------------------


def _moment(epoch: Any) -> dt.datetime | None:
    if isinstance(epoch, int) and not isinstance(epoch, bool):
        try:
            return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _day_run(connection: Connection) -> SyncRun:
    """The connection's webhook run of the day (created on its first event), locked for this event."""
    sync = ObjectSync.all_orgs.select_for_update().get(connection=connection, object_name="invoices")
    now = timezone.now()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    run = SyncRun.all_orgs.filter(sync=sync, trigger=RunTrigger.WEBHOOK, created_at__gte=start).order_by("-pk").first()
    if run is None:
        run = SyncRun.all_orgs.create(
            organization_id=connection.organization_id,
            sync=sync,
            mode=RunMode.SYNC,
            trigger=RunTrigger.WEBHOOK,
            status=JobStatus.SUCCEEDED,
            started_at=now,
        )
    run.finished_at = now
    return run


def _match(connection: Connection, invoice: dict[str, Any]) -> tuple[str, str]:
    """``(account external id, "")`` or ``("", reason)``."""
    org_id = connection.organization_id
    hint = account_hint(invoice.get("metadata"))
    customer = invoice.get("customer")
    customer_id = customer.get("id") if isinstance(customer, dict) else customer
    if not hint and isinstance(customer, dict):
        hint = account_hint(customer.get("metadata"))
    if not hint and isinstance(customer_id, str) and customer_id:
        link = VendorCustomer.all_orgs.filter(
            organization_id=org_id, connection=connection, customer_id=customer_id
        ).first()
        hint = link.account_external_id if link else ""
    accounts = Account.all_orgs.filter(organization_id=org_id)
    if hint:
        if accounts.filter(external_id=hint).exists():
            return hint, ""
        return "", f"no account has the external id {hint!r} (the customer's metadata)"
    email = str(invoice.get("customer_email") or "").strip().lower()
    domain = email.rsplit("@", 1)[1] if "@" in email else ""
    if not domain:
        return "", "the customer has no account metadata (retain_account_external_id) and no email"
    found = list(
        accounts.filter(domain__iexact=domain)
        .exclude(external_id__isnull=True)
        .values_list("external_id", flat=True)[:2]
    )
    found = [ext for ext in found if ext]
    if len(found) == 1:
        return found[0], ""
    if not found:
        return "", f"no account metadata on the customer and no account has the domain {domain!r}"
    return "", f"no account metadata on the customer and several accounts have the domain {domain!r}"


def _record_error(run: SyncRun, reference: str, field: str, reason: str, event: dict[str, Any]) -> None:
    obj = event["data"]["object"]
    customer = obj.get("customer")
    SyncRecordError.all_orgs.create(
        organization_id=run.organization_id,
        run=run,
        object_name="invoices",
        external_id=reference[:120],
        field=field[:120],
        reason=reason[:500],
        excerpt={
            "event": event["id"],
            "type": event["type"],
            "customer": str(customer.get("id") if isinstance(customer, dict) else customer or "")[:120],
            "customer_email": str(obj.get("customer_email") or "")[:120],
        },
    )


def handle_stripe_event(connection: Connection, event: dict[str, Any]) -> tuple[str, str, str]:
    """Apply one verified event once; ``(outcome, reference, reason)``. A replayed event id answers
    ``("duplicate", …)`` and changes nothing."""
    obj = event["data"]["object"]
    event_type = event["type"]
    reference = str(obj.get("id") or "")[:120]
    created = _moment(event.get("created"))
    try:
        with transaction.atomic():
            row = WebhookEvent.all_orgs.create(
                organization_id=connection.organization_id,
                connection=connection,
                event_id=event["id"],
                event_type=event_type,
                event_created=created,
                outcome=WebhookOutcome.IGNORED,
                reference=reference,
            )
            outcome, reason = _apply(connection, event, row)
            row.outcome, row.reason = outcome, reason[:500]
            row.save(update_fields=["outcome", "reason"])
    except IntegrityError:
        previous = WebhookEvent.all_orgs.filter(
            organization_id=connection.organization_id, connection=connection, event_id=event["id"]
        ).first()
        return "duplicate", reference, f"already received ({previous.outcome if previous else 'being applied'})"
    return outcome, reference, reason


def _apply(connection: Connection, event: dict[str, Any], row: WebhookEvent) -> tuple[str, str]:
    obj = event["data"]["object"]
    event_type = event["type"]
    if event_type in CUSTOMER_EVENTS:
        customer_id = str(obj.get("id") or "")
        if not customer_id:
            return WebhookOutcome.IGNORED, "the customer has no id"
        VendorCustomer.all_orgs.update_or_create(
            organization_id=connection.organization_id,
            connection=connection,
            customer_id=customer_id[:120],
            defaults={
                "account_external_id": account_hint(obj.get("metadata"))[:120],
                "email": str(obj.get("email") or "")[:254],
            },
        )
        return WebhookOutcome.APPLIED, ""
    if event_type not in INVOICE_EVENTS:
        return WebhookOutcome.IGNORED, f"{event_type} is not an event Retain uses"
    if (
        row.event_created is not None
        and WebhookEvent.all_orgs.filter(
            organization_id=connection.organization_id,
            connection=connection,
            reference=row.reference,
            event_created__gt=row.event_created,
            outcome__in=[WebhookOutcome.APPLIED, WebhookOutcome.UNCHANGED],
        ).exists()
    ):
        return WebhookOutcome.STALE, "an event newer than this one was already applied to the invoice"
    run = _day_run(connection)
    run.fetched += 1
    outcome, reason = _apply_invoice(connection, event, run)
    run.save()
    return outcome, reason


def _apply_invoice(connection: Connection, event: dict[str, Any], run: SyncRun) -> tuple[str, str]:
    obj = event["data"]["object"]
    reference = str(obj.get("id") or "")
    if not reference:
        run.failed += 1
        _record_error(run, "", "", "malformed record: the invoice has no id", event)
        return WebhookOutcome.FAILED, "the invoice has no id"
    account, reason = _match(connection, obj)
    if not account:
        run.failed += 1
        _record_error(run, reference, "account_external_id", reason, event)
        return WebhookOutcome.UNMATCHED, reason
    try:
        cells = invoice_row(obj, event["type"], event.get("created"))
    except ValueError as exc:
        run.failed += 1
        _record_error(run, reference, "", f"malformed record: {exc}", event)
        return WebhookOutcome.FAILED, str(exc)
    cells["account_external_id"] = account
    result = import_rows(
        connection.organization, "invoices", INVOICE_COLUMNS, [(2, [cells[c] for c in INVOICE_COLUMNS])]
    )
    if result.errors:
        run.failed += 1
        error = result.errors[0]
        _record_error(run, reference, error.column, error.reason, event)
        return WebhookOutcome.FAILED, f"{error.column}: {error.reason}"
    run.created += result.created
    run.updated += result.updated
    run.unchanged += result.unchanged
    if result.created or result.updated:
        return WebhookOutcome.APPLIED, ""
    return WebhookOutcome.UNCHANGED, ""
