"""The survey invitation email: a sandboxed template (subject and body are plain text with a few merge
fields), the response link and the one-click unsubscribe link (:mod:`accounts.mailing`).

The sandbox is a substitution, not a template engine: ``{{ contact.first_name }}``, ``{{ contact.name }}``,
``{{ account.name }}``, ``{{ organization.name }}`` and ``{{ csm.name }}`` are replaced by their values;
any other ``{{ … }}`` or any ``{% … %}`` is refused when the survey is saved
(:func:`validate_email_source`), so nothing an admin writes can reach anything but those values. The
HTML part escapes the admin's text and the values; the response link and the unsubscribe link are
appended by Retain, never typed by the admin.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

__all__ = ["MERGE_FIELDS", "RenderedInvitation", "render_invitation", "validate_email_source"]

MERGE_FIELDS: dict[str, str] = {
    "contact.first_name": "The contact's first name",
    "contact.name": "The contact's full name",
    "account.name": "The account's name",
    "organization.name": "Your organization's name",
    "csm.name": "The account owner's name",
}
_TAG = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def validate_email_source(source: str, *, field: str) -> None:
    """Refuse ``{% … %}`` tags and any ``{{ … }}`` that is not a merge field."""
    if "{%" in source or "%}" in source:
        raise ValidationError({field: "Template tags ({% … %}) are not allowed; use merge fields."})
    for name in _TAG.findall(source):
        if name not in MERGE_FIELDS:
            known = ", ".join(MERGE_FIELDS)
            raise ValidationError({field: f"Unknown merge field {{{{ {name} }}}}: use one of {known}."})
    leftover = _TAG.sub("", source)
    if "{{" in leftover or "}}" in leftover:
        raise ValidationError({field: "An unclosed {{ or a stray }}."})


def merge_values(*, contact: Any, account: Any, organization: Any) -> dict[str, str]:
    owner = getattr(account, "owner", None)
    name = (contact.name or "") if contact is not None else ""
    return {
        "contact.first_name": name.split()[0] if name.strip() else "",
        "contact.name": name,
        "account.name": account.name if account is not None else "",
        "organization.name": organization.name,
        "csm.name": (owner.get_full_name() or owner.email) if owner is not None else "",
    }


def _fill(source: str, values: dict[str, str], *, escape: bool) -> str:
    text = html.escape(source, quote=False) if escape else source
    return _TAG.sub(lambda m: html.escape(values.get(m.group(1), "")) if escape else values.get(m.group(1), ""), text)


@dataclass(frozen=True)
class RenderedInvitation:
    subject: str
    text: str
    html: str


def render_invitation(survey: Any, values: dict[str, str], *, link: str, unsubscribe: str = "") -> RenderedInvitation:
    """The email of ``survey`` with ``values`` merged, the response ``link`` and the unsubscribe footer."""
    subject = " ".join(_fill(survey.email_subject, values, escape=False).split())[:200]
    body = _fill(survey.email_body, values, escape=False).strip()
    text = f"{body}\n\n{survey.question}\nAnswer here (one click, no sign-in): {link}\n"
    blocks = [b.strip() for b in re.split(r"\n\s*\n", _fill(survey.email_body, values, escape=True)) if b.strip()]
    body_html = "\n".join("<p>" + b.replace("\n", "<br>\n") + "</p>" for b in blocks)
    body_html += f'\n<p>{html.escape(survey.question)}</p>\n<p><a href="{html.escape(link)}">Answer the survey</a></p>'
    if unsubscribe:
        text += f"\n--\nUnsubscribe: {unsubscribe}\n"
        body_html += f'\n<p style="font-size:12px;color:#666"><a href="{html.escape(unsubscribe)}">Unsubscribe</a></p>'
    return RenderedInvitation(subject=subject, text=text, html=body_html)
