"""Templated email to an account's contacts (issue 12 §2): validation and sandboxed rendering of
:class:`~playbooks.models.EmailTemplate`, sending through Django's email backend (console in the demo, SMTP
in production: ``EMAIL_*`` settings), and the one-click unsubscribe link.

**The sandbox** is :mod:`accounts.mailing`'s (surveys use the same one): on save,
:func:`validate_template_source` accepts only ``{{ field }}`` tags naming a field of :data:`MERGE_FIELDS`, with
the filters of :data:`ALLOWED_FILTERS`, and refuses any ``{% tag %}``; rendering merges a context of plain
dictionaries of strings and dates built here (:func:`merge_context`), never a model instance.

**Who gets it.** :func:`send_templated_email` sends to the account's contacts holding any of the given
roles, skipping the unsubscribed, the departed (or inactive) and those without an address; every contact
considered is a :class:`~playbooks.models.EmailSendLog` row. Each message carries an unsubscribe link
(``/u/<token>/``, a signed token naming the organization and the contact) in its footer and in the
``List-Unsubscribe`` and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` headers (RFC 8058).
Who may be emailed and the unsubscribe token live in :mod:`accounts.mailing` (surveys use them too);
they are re-exported here.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.utils import timezone

from accounts.mailing import (
    MERGE_FILTERS,
    contact_skip_reason,
    html_paragraphs,
    read_unsubscribe_token,
    render_merge,
    unsubscribe_token,
    unsubscribe_url,
    validate_merge_source,
)
from accounts.models import Account, Contact

from .models import EmailSendLog, EmailSendStatus, EmailTemplate

__all__ = [
    "ALLOWED_FILTERS",
    "MERGE_FIELDS",
    "RenderedEmail",
    "SendResult",
    "merge_context",
    "read_unsubscribe_token",
    "render_email",
    "send_templated_email",
    "unsubscribe_token",
    "unsubscribe_url",
    "validate_template_source",
]

#: The merge fields a template may use, with what each is.
MERGE_FIELDS: dict[str, str] = {
    "account.name": "The account's name",
    "contact.first_name": "The contact's first name (their name's first word)",
    "contact.name": "The contact's full name",
    "csm.name": "The account owner's name",
    "csm.email": "The account owner's email address",
    "renewal.date": "The account's next renewal date (empty when none)",
}
#: Filters a merge field may go through: ``{{ renewal.date|date:"j F Y" }}``,
#: ``{{ contact.first_name|default:"there" }}`` (all of the sandbox's).
ALLOWED_FILTERS = MERGE_FILTERS

logger = logging.getLogger(__name__)


def validate_template_source(source: str, *, field: str = "body") -> None:
    """Refuse anything but ``{{ merge.field|filter }}`` tags (and ``{# comments #}``); raise a
    :class:`ValidationError` naming the first offending tag."""
    validate_merge_source(source, fields=MERGE_FIELDS, filters=ALLOWED_FILTERS, field=field)


def _first_name(name: str) -> str:
    return name.split()[0] if name.strip() else ""


def merge_context(account: Account, contact: Contact | None, *, csm: Any = None) -> dict[str, Any]:
    """The merge fields' values as plain dictionaries (never model instances: see the module docstring)."""
    owner = csm if csm is not None else account.owner
    return {
        "account": {"name": account.name},
        "contact": {
            "first_name": _first_name(contact.name) if contact else "",
            "name": contact.name if contact else "",
        },
        "csm": {
            "name": (owner.get_full_name() or owner.email) if owner is not None else "",
            "email": owner.email if owner is not None else "",
        },
        "renewal": {"date": account.next_renewal_date},
    }


@dataclass(frozen=True)
class RenderedEmail:
    """One message: its subject, its plain-text body and its HTML body."""

    subject: str
    text: str
    html: str


def render_email(
    template: EmailTemplate, account: Account, contact: Contact | None, *, unsubscribe: str = ""
) -> RenderedEmail:
    """Render ``template`` for ``contact`` of ``account`` in the sandbox. The body is plain text written by
    the admin: its merge values are escaped for the HTML part, paragraphs become ``<p>``; the plain-text part
    is the same text unescaped. ``unsubscribe`` (a URL) adds the footer."""
    values = merge_context(account, contact)
    body_html = html_paragraphs(render_merge(template.body, values, html_part=True))
    # The plain-text part and the subject are not HTML: nothing to escape (a "&" stays a "&").
    body_text = render_merge(template.body, values)
    subject = " ".join(render_merge(template.subject, values).split())
    if unsubscribe:
        body_text += f"\n\n--\nUnsubscribe: {unsubscribe}\n"
        link = html.escape(unsubscribe)
        body_html += (
            f'\n<p style="font-size:12px;color:#666">Don&#x27;t want these emails? <a href="{link}">Unsubscribe</a></p>'
        )
    return RenderedEmail(subject=subject[:200], text=body_text.strip() + "\n", html=body_html)


# --- Sending ----------------------------------------------------------------------------------------


@dataclass
class SendResult:
    """What :func:`send_templated_email` did: messages sent and contacts skipped, by reason."""

    sent: int = 0
    skipped: dict[str, int] | None = None

    def skip(self, status: str) -> None:
        self.skipped = self.skipped or {}
        self.skipped[status] = self.skipped.get(status, 0) + 1


def send_templated_email(
    template: EmailTemplate, account: Account, roles: Iterable[str], *, on_commit: bool = False
) -> SendResult:
    """Send ``template`` to each contact of ``account`` holding one of ``roles`` (all contacts when ``roles`` is
    empty), through the configured email backend; log every contact considered. An inactive template, or one
    of another organization, sends nothing.

    ``on_commit`` (the playbook action): the log is written now, in the caller's transaction, and the
    messages go to the backend when that transaction commits (none if it rolls back); ``sent`` then counts
    the messages handed over, and a mail-server failure at that point is logged, not raised."""
    if template.organization_id != account.organization_id:
        raise ValidationError("The template and the account belong to different organizations.")
    result = SendResult()
    if not template.is_active:
        return result
    wanted = set(roles)
    today = timezone.localdate()
    contacts = [
        c
        for c in Contact.objects.for_org(account.organization_id).filter(account=account).order_by("pk")
        if not wanted or wanted & set(c.roles or [])
    ]
    owner = account.owner  # replies go to the CSM
    reply_to = [owner.email] if owner is not None and owner.email else []
    logs, messages = [], []
    for contact in contacts:
        reason = contact_skip_reason(contact, today)
        if reason:
            result.skip(reason)
            logs.append((contact, reason, ""))
            continue
        link = unsubscribe_url(contact)
        rendered = render_email(template, account, contact, unsubscribe=link)
        message = EmailMultiAlternatives(
            subject=rendered.subject,
            body=rendered.text,
            to=[contact.email],
            reply_to=reply_to,
            headers={"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        )
        message.attach_alternative(rendered.html, "text/html")
        messages.append(message)
        logs.append((contact, EmailSendStatus.SENT, rendered.subject))
    if messages and on_commit:
        transaction.on_commit(partial(_deliver, messages, account.organization_id), robust=True)
        result.sent = len(messages)
    elif messages:
        result.sent = get_connection().send_messages(messages) or 0
    EmailSendLog.objects.for_org(account.organization_id).bulk_create(
        [
            EmailSendLog(
                organization_id=account.organization_id, template=template, account=account, contact=contact,
                to=contact.email, subject=subject, status=status,
            )
            for contact, status, subject in logs
        ]
    )  # fmt: skip
    return result


def _deliver(messages: list[EmailMultiAlternatives], organization_id: int) -> None:
    """Hand messages to the email backend after a commit; a mail-server outage is logged, never raised (the
    firing that wrote the send log has committed)."""
    try:
        get_connection().send_messages(messages)
    except Exception:
        logger.exception("organization %s: sending %d templated emails failed", organization_id, len(messages))
