"""What every app that emails contacts shares (below playbooks' templated email and feedback's surveys):
who may be emailed, the one-click unsubscribe link, and the merge-field sandbox.

**Who may be emailed.** :func:`contact_skip_reason` says why a contact is not emailed: unsubscribed,
departed (or inactive), or without an address; ``None`` when they may be. Playbooks' templated email and
survey sends both apply it, and record the reason of each contact skipped.

**Unsubscribe.** :func:`unsubscribe_token` is a signed, non-expiring token naming the organization and
the contact (a link in an old email must still work); :func:`read_unsubscribe_token` reads it back, or
answers ``None`` for a forged or damaged one; :func:`unsubscribe_url` is the public ``/u/<token>/`` page
(URL name ``email-unsubscribe``, mounted by the composition root) that marks the contact unsubscribed
(:func:`accounts.services.unsubscribe_contact`). The salt predates this module (it was playbooks'): links
already sent keep working.

**The merge-field sandbox.** An email written by an admin is rendered for many contacts by workers, so it must
not reach anything but its merge fields. Each app names its own fields (playbooks: account, contact, CSM,
renewal date; surveys: contact, account, organization, CSM) and builds their values; the sandbox is one:

* on save, :func:`validate_merge_source` accepts only ``{{ field }}`` tags naming one of the caller's fields,
  with the filters it allows (of :data:`MERGE_FILTERS`), and ``{# comments #}``; any ``{% tag %}``
  (``include``, ``load``, ``debug``, ``url``, ...) is refused;
* :func:`render_merge` uses a private :class:`~django.template.Engine` with no template loader and no
  library, autoescape on for the HTML part (the admin's text escaped as text, then the values), off for
  the plain-text part and the subject; the caller passes plain dictionaries of strings and dates, never a
  model instance, so even a template that slipped past validation could not walk to the database.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import models
from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import Lexer, TokenType
from django.urls import reverse

from .models import Contact

__all__ = [
    "MERGE_FILTERS",
    "UNSUBSCRIBE_SALT",
    "SkipReason",
    "contact_skip_reason",
    "html_paragraphs",
    "read_unsubscribe_token",
    "render_merge",
    "unsubscribe_token",
    "unsubscribe_url",
    "validate_merge_source",
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


# --- The merge-field sandbox ------------------------------------------------------------------------

#: Every filter a merge field may go through (each caller allows some of them):
#: ``{{ renewal.date|date:"j F Y" }}``, ``{{ contact.first_name|default:"there" }}``.
MERGE_FILTERS = ("default", "date", "upper", "lower", "title", "capfirst")

_FILTER = r'\|\s*(?P<name>[a-z_]+)(?::\s*"[^"{}%|]*")?\s*'
_VARIABLE = re.compile(r"^\s*(?P<field>[a-z_]+\.[a-z_]+)\s*(?P<filters>(" + _FILTER + r")*)$")
_FILTER_NAMES = re.compile(_FILTER)

#: The sandbox engine: no loaders (no include/extends can read a file), no libraries, autoescape on.
_SANDBOX = Engine(loaders=[], libraries={}, autoescape=True, string_if_invalid="", debug=False)


def validate_merge_source(
    source: str, *, fields: Mapping[str, str], filters: Sequence[str] = MERGE_FILTERS, field: str = "body"
) -> None:
    """Refuse anything but ``{{ merge.field|filter }}`` tags naming one of ``fields`` with ``filters`` (and
    ``{# comments #}``); raise a :class:`ValidationError` on ``field`` naming the first offending tag."""
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.TEXT and any(mark in token.contents for mark in ("{{", "{%", "}}", "%}")):
            raise ValidationError({field: "A merge field is not closed: write it as {{ account.name }}."})
        if token.token_type == TokenType.BLOCK:
            raise ValidationError({field: f"“{{% {token.contents} %}}”: only merge fields are allowed, no tags."})
        if token.token_type != TokenType.VAR:
            continue
        match = _VARIABLE.match(token.contents)
        if match is None or match["field"] not in fields:
            known = ", ".join("{{ " + name + " }}" for name in fields)
            raise ValidationError({field: f"“{{{{ {token.contents} }}}}” is not a merge field. Use: {known}."})
        for filter_name in _FILTER_NAMES.findall(match["filters"]):
            if filter_name not in filters or filter_name not in MERGE_FILTERS:
                allowed = f"filters: {', '.join(filters)}" if filters else "no filter is allowed here"
                raise ValidationError({field: f"“|{filter_name}” is not allowed; {allowed}."})
    try:
        _SANDBOX.from_string(source)
    except TemplateSyntaxError as exc:
        raise ValidationError({field: f"Not a valid template: {exc}"}) from None


def render_merge(source: str, values: dict[str, Any], *, html_part: bool = False) -> str:
    """``source`` (validated by :func:`validate_merge_source`) with ``values`` (nested plain dictionaries:
    ``{"account": {"name": ...}}``) merged in the sandbox. ``html_part``: the admin's text is escaped as
    text and the values are autoescaped; otherwise nothing is escaped (plain text, a subject)."""
    if html_part:
        escaped_source = html.escape(source, quote=False)  # the admin's text is text, not HTML
        return _SANDBOX.from_string(escaped_source).render(Context(values, autoescape=True))
    return _SANDBOX.from_string(source).render(Context(values, autoescape=False))


def html_paragraphs(rendered_html: str) -> str:
    """Blank-line-separated blocks as ``<p>``, single line breaks as ``<br>``."""
    blocks = [block.strip() for block in re.split(r"\n\s*\n", rendered_html) if block.strip()]
    return "\n".join("<p>" + block.replace("\n", "<br>\n") + "</p>" for block in blocks)
