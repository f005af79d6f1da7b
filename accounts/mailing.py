"""What every app that emails contacts shares (below playbooks' templated email and feedback's surveys):
who may be emailed, and the one-click unsubscribe link.

**Who may be emailed.** :func:`contact_skip_reason` says why a contact is not emailed: unsubscribed,
departed (or inactive), or without an address; ``None`` when they may be. Playbooks' templated email and
survey sends both apply it, and record the reason of each contact skipped.

**Unsubscribe.** :func:`unsubscribe_token` is a signed, non-expiring token naming the organization and
the contact (a link in an old email must still work); :func:`read_unsubscribe_token` reads it back, or
answers ``None`` for a forged or damaged one; :func:`unsubscribe_url` is the public ``/u/<token>/`` page
(URL name ``email-unsubscribe``, mounted by the composition root) that marks the contact unsubscribed
(:func:`accounts.services.unsubscribe_contact`). The salt predates this module (it was playbooks'): links
already sent keep working.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core import signing
from django.db import models
from django.urls import reverse

from .models import Contact

__all__ = [
    "UNSUBSCRIBE_SALT",
    "SkipReason",
    "contact_skip_reason",
    "read_unsubscribe_token",
    "unsubscribe_token",
    "unsubscribe_url",
]

UNSUBSCRIBE_SALT = "retain.playbooks.unsubscribe"


class SkipReason(models.TextChoices):
    """Why a contact is not emailed (the values are stored by playbooks' send logs and survey sends)."""

    UNSUBSCRIBED = "skipped_unsubscribed", "Skipped: unsubscribed"
    DEPARTED = "skipped_departed", "Skipped: departed or inactive"
    NO_EMAIL = "skipped_no_email", "Skipped: no email address"


def contact_skip_reason(contact: Contact, today: dt.date) -> str | None:
    """Why ``contact`` may not be emailed on ``today`` (a :class:`SkipReason` value), or ``None``."""
    if contact.unsubscribed:
        return SkipReason.UNSUBSCRIBED
    if not contact.is_active or (contact.departed_at is not None and contact.departed_at <= today):
        return SkipReason.DEPARTED
    if not contact.email:
        return SkipReason.NO_EMAIL
    return None


def unsubscribe_token(contact: Contact) -> str:
    """A signed, non-expiring token naming the contact and its organization."""
    return signing.dumps({"o": contact.organization_id, "c": contact.pk}, salt=UNSUBSCRIBE_SALT, compress=True)


def read_unsubscribe_token(token: str) -> tuple[int, int] | None:
    """``(organization_id, contact_id)`` from a token, or ``None`` when it is forged or damaged."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        return int(data["o"]), int(data["c"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def unsubscribe_url(contact: Contact) -> str:
    """The absolute one-click unsubscribe link of ``contact``."""
    return settings.PUBLIC_BASE_URL + reverse("email-unsubscribe", args=[unsubscribe_token(contact)])
