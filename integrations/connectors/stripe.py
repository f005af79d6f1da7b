"""Stripe: invoices pushed by Stripe's signed webhooks → the health engine's invoices signal.

Stripe is an **inbound** connector: nothing is pulled (no API key is stored), Stripe POSTs events to
``/hooks/<org-slug>/stripe/`` (:mod:`integrations.webhooks`), verified with the official library's
``stripe.Webhook.construct_event`` (``Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")``, 5 minutes
of tolerance) under the connection's signing secret (``whsec_…``, stored encrypted like every credential).

Stripe reference pages:

- "Receive Stripe events in your webhook endpoint" (https://docs.stripe.com/webhooks) — signatures,
  retries (up to three days on a non-2xx answer), no ordering guarantee, duplicate deliveries;
- "The Invoice object" (https://docs.stripe.com/api/invoices/object) — ``id``, ``customer``,
  ``customer_email``, ``amount_due`` (smallest currency unit), ``currency``, ``due_date``, ``created``,
  ``status``, ``status_transitions.paid_at``/``voided_at``, ``metadata``;
- "Types of events" (https://docs.stripe.com/api/events/types) — ``invoice.created``, ``invoice.finalized``,
  ``invoice.paid``, ``invoice.payment_failed``, ``invoice.voided``, ``invoice.marked_uncollectible``
  (and ``invoice.updated``), ``customer.created``/``customer.updated``;
- "Zero-decimal currencies" (https://docs.stripe.com/currencies#zero-decimal).

This module holds the connector class (for the registry, the connect form and the test button) and the
pure mapping of an invoice object to an ``invoices`` import row (:func:`invoice_row`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from .base import Connector, ConnectorError, ObjectSpec, Page, RateLimit, register

__all__ = [
    "INVOICE_EVENTS",
    "StripeConnector",
    "account_hint",
    "invoice_row",
]

#: The invoice events applied (each carries the whole invoice object as it is after the event).
INVOICE_EVENTS = (
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "invoice.updated",
)
CUSTOMER_EVENTS = ("customer.created", "customer.updated")
METADATA_KEYS = ("retain_account_external_id", "account_external_id")
ZERO_DECIMAL = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()  # docs.stripe.com/currencies
)

#: Documented for the admin (docs/integrations.md); the webhook applies it directly.
INVOICES_MAPPING: dict[str, Any] = {
    "fields": [
        {"target": "account_external_id", "source": "metadata.retain_account_external_id", "transform": "text"},
        {"target": "due_date", "source": "due_date", "transform": "date"},
        {"target": "amount", "source": "amount_due", "transform": {"money": {"divide": 100}}},
        {"target": "paid_at", "source": "status_transitions.paid_at", "transform": "date"},
    ]
}


def _day(epoch: Any) -> str:
    if epoch in (None, "") or isinstance(epoch, bool):
        return ""
    try:
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC).date().isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        raise ValueError(f"{epoch!r} is not a Unix timestamp") from None


def account_hint(metadata: Any) -> str:
    """The account external id named by Stripe metadata (``retain_account_external_id`` first)."""
    if not isinstance(metadata, dict):
        return ""
    for key in METADATA_KEYS:
        value = str(metadata.get(key) or "").strip()
        if value:
            return value
    return ""


def invoice_row(invoice: dict[str, Any], event_type: str, event_created: Any) -> dict[str, str]:
    """The ``invoices`` import row of a Stripe invoice object (without ``account_external_id``).

    ``due_date``: the invoice's ``due_date`` (invoices sent for payment), else its creation day (charged
    automatically: due at once). ``amount``: ``amount_due`` in the currency's unit (zero-decimal currencies
    as they are). ``paid_at``: the day of ``status_transitions.paid_at`` once paid. A voided invoice is owed
    nothing: amount 0, settled on the day it was voided (never overdue). ``marked_uncollectible`` stays
    unpaid (and overdue: the strongest financial risk). Raises ValueError with the reason."""
    status = str(invoice.get("status") or "")
    transitions = invoice.get("status_transitions") if isinstance(invoice.get("status_transitions"), dict) else {}
    due = _day(invoice.get("due_date")) or _day(invoice.get("created"))
    if not due:
        raise ValueError("the invoice has neither due_date nor created")
    currency = str(invoice.get("currency") or "").lower()
    raw_amount = invoice.get("amount_due")
    if isinstance(raw_amount, bool) or not isinstance(raw_amount, int):
        raise ValueError("amount_due is not a whole number of the currency's smallest unit")
    amount = Decimal(raw_amount) if currency in ZERO_DECIMAL else Decimal(raw_amount) / 100
    paid = ""
    if status == "paid" or event_type == "invoice.paid":
        paid = _day(transitions.get("paid_at")) or _day(event_created)
    if status == "void" or event_type == "invoice.voided":
        amount = Decimal(0)
        paid = _day(transitions.get("voided_at")) or _day(event_created)
    return {
        "external_id": str(invoice.get("id") or ""),
        "due_date": due,
        "amount": f"{amount:.2f}" if amount == amount.quantize(Decimal("0.01")) else str(amount),
        "paid_at": paid,
    }


@register
class StripeConnector(Connector):
    kind = "stripe"
    label = "Stripe (invoices by webhook)"
    default_base_url = "https://api.stripe.com"  # not called: Stripe pushes
    credential_fields = ("signing_secret",)
    rate_limit = RateLimit(requests=25, per_seconds=1)
    reference_url = "https://docs.stripe.com/webhooks"
    objects = {
        "invoices": ObjectSpec(
            name="invoices",
            label="Invoices (Stripe webhook) → invoices",
            target="invoices",
            default_mapping=INVOICES_MAPPING,
        ),
    }

    def test_connection(self) -> str:
        secret = str(self.connection.credentials.get("signing_secret") or "")
        if not secret.startswith("whsec_"):
            raise ConnectorError("Paste the endpoint's signing secret from Stripe (it starts with whsec_).")
        return (
            "The signing secret is set. Stripe pushes events: send a test event from Stripe's dashboard and "
            "look at this connection's webhook runs."
        )

    def fetch_page(self, spec: ObjectSpec, cursor: dict[str, Any], mapping: dict[str, Any]) -> Page:
        raise ConnectorError(
            "Stripe invoices arrive by webhook (/hooks/<organization>/stripe/); there is nothing to pull."
        )
