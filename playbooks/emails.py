"""Templated email to an account's contacts (issue 12 §2): validation and sandboxed rendering of
:class:`~playbooks.models.EmailTemplate`, sending through Django's email backend (console in the demo, SMTP
in production: ``EMAIL_*`` settings), and the one-click unsubscribe link.

**The sandbox.** A template is written by an admin but rendered for many contacts by workers, so it must
not reach anything but its merge fields:

* on save, :func:`validate_template_source` accepts only ``{{ field }}`` tags naming a field of
  :data:`MERGE_FIELDS`, with the filters of :data:`ALLOWED_FILTERS`; any ``{% tag %}`` (``include``,
  ``load``, ``debug``, ``url``, ...) is refused;
* rendering uses a private :class:`~django.template.Engine` with no template loader and no library, with
  autoescape on, and a context of plain dictionaries of strings and dates built here
  (:func:`merge_context`): never a model instance, so even a template that slipped past validation could
  not walk from ``account`` to the database.

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
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import Lexer, TokenType
from django.utils import timezone

from accounts.mailing import contact_skip_reason, read_unsubscribe_token, unsubscribe_token, unsubscribe_url
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
#: ``{{ contact.first_name|default:"there" }}``.
ALLOWED_FILTERS = ("default", "date", "upper", "lower", "title", "capfirst")

_FILTER = r'\|\s*(?P<name>[a-z_]+)(?::\s*"[^"{}%|]*")?\s*'
_VARIABLE = re.compile(r"^\s*(?P<field>[a-z_]+\.[a-z_]+)\s*(?P<filters>(" + _FILTER + r")*)$")
_FILTER_NAMES = re.compile(_FILTER)

logger = logging.getLogger(__name__)

#: The sandbox engine: no loaders (no include/extends can read a file), no libraries, autoescape on.
_ENGINE = Engine(loaders=[], libraries={}, autoescape=True, string_if_invalid="", debug=False)


def validate_template_source(source: str, *, field: str = "body") -> None:
    """Refuse anything but ``{{ merge.field|filter }}`` tags (and ``{# comments #}``); raise a
    :class:`ValidationError` naming the first offending tag."""
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.TEXT and any(mark in token.contents for mark in ("{{", "{%", "}}", "%}")):
            raise ValidationError({field: "A merge field is not closed: write it as {{ account.name }}."})
        if token.token_type == TokenType.BLOCK:
            raise ValidationError({field: f"“{{% {token.contents} %}}”: only merge fields are allowed, no tags."})
        if token.token_type != TokenType.VAR:
            continue
        match = _VARIABLE.match(token.contents)
        if match is None or match["field"] not in MERGE_FIELDS:
            known = ", ".join("{{ " + name + " }}" for name in MERGE_FIELDS)
            raise ValidationError({field: f"“{{{{ {token.contents} }}}}” is not a merge field. Use: {known}."})
        for filter_name in _FILTER_NAMES.findall(match["filters"]):
            if filter_name not in ALLOWED_FILTERS:
                raise ValidationError(
                    {field: f"“|{filter_name}” is not allowed; filters: {', '.join(ALLOWED_FILTERS)}."}
                )
    try:
        _ENGINE.from_string(source)
    except TemplateSyntaxError as exc:
        raise ValidationError({field: f"Not a valid template: {exc}"}) from None


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


def _paragraphs(rendered_html: str) -> str:
    blocks = [block.strip() for block in re.split(r"\n\s*\n", rendered_html) if block.strip()]
    return "\n".join("<p>" + block.replace("\n", "<br>\n") + "</p>" for block in blocks)


def render_email(
    template: EmailTemplate, account: Account, contact: Contact | None, *, unsubscribe: str = ""
) -> RenderedEmail:
    """Render ``template`` for ``contact`` of ``account`` in the sandbox. The body is plain text written by
    the admin: its merge values are escaped for the HTML part, paragraphs become ``<p>``; the plain-text part
    is the same text unescaped. ``unsubscribe`` (a URL) adds the footer."""
    values = merge_context(account, contact)
    escaped_source = html.escape(template.body, quote=False)  # the admin's text is text, not HTML
    body_html = _paragraphs(_ENGINE.from_string(escaped_source).render(Context(values, autoescape=True)))
    # The plain-text part and the subject are not HTML: nothing to escape (a "&" stays a "&").
    body_text = _ENGINE.from_string(template.body).render(Context(values, autoescape=False))
    subject = " ".join(_ENGINE.from_string(template.subject).render(Context(values, autoescape=False)).split())
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
