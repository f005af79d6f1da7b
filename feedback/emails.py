"""The survey invitation email: subject and body are plain text with a few merge fields, rendered in the
merge-field sandbox of :mod:`accounts.mailing` (the one playbooks' email templates use), with the response
link and the one-click unsubscribe link appended.

Only ``{{ contact.first_name }}``, ``{{ contact.name }}``, ``{{ account.name }}``, ``{{ organization.name }}``
and ``{{ csm.name }}`` are accepted, without filters; any other ``{{ … }}`` or any ``{% … %}`` is refused
when the survey is saved (:func:`validate_email_source`), and the values are plain strings, so nothing an
admin writes can reach anything but those values. The HTML part escapes the admin's text and the values;
the response link and the unsubscribe link are appended by Retain, never typed by the admin.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from accounts.mailing import html_paragraphs, render_merge, validate_merge_source

__all__ = ["MERGE_FIELDS", "RenderedInvitation", "render_invitation", "validate_email_source"]

MERGE_FIELDS: dict[str, str] = {
    "contact.first_name": "The contact's first name",
    "contact.name": "The contact's full name",
    "account.name": "The account's name",
    "organization.name": "Your organization's name",
    "csm.name": "The account owner's name",
}
#: Survey emails take no filter (``|date``, ``|default`` ...): their fields are plain names.
FILTERS: tuple[str, ...] = ()


def validate_email_source(source: str, *, field: str) -> None:
    """Refuse ``{% … %}`` tags, filters and any ``{{ … }}`` that is not a merge field (the shared sandbox)."""
    validate_merge_source(source, fields=MERGE_FIELDS, filters=FILTERS, field=field)


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


def _nested(values: dict[str, str]) -> dict[str, dict[str, str]]:
    """``{"contact.name": v}`` → ``{"contact": {"name": v}}``: the sandbox's context."""
    out: dict[str, dict[str, str]] = {}
    for name, value in values.items():
        group, _, key = name.partition(".")
        out.setdefault(group, {})[key] = value
    return out


@dataclass(frozen=True)
class RenderedInvitation:
    subject: str
    text: str
    html: str


def render_invitation(survey: Any, values: dict[str, str], *, link: str, unsubscribe: str = "") -> RenderedInvitation:
    """The email of ``survey`` with ``values`` merged, the response ``link`` and the unsubscribe footer."""
    context = _nested(values)
    subject = " ".join(render_merge(survey.email_subject, context).split())[:200]
    body = render_merge(survey.email_body, context).strip()
    text = f"{body}\n\n{survey.question}\nAnswer here (one click, no sign-in): {link}\n"
    body_html = html_paragraphs(render_merge(survey.email_body, context, html_part=True))
    body_html += f'\n<p>{html.escape(survey.question)}</p>\n<p><a href="{html.escape(link)}">Answer the survey</a></p>'
    if unsubscribe:
        text += f"\n--\nUnsubscribe: {unsubscribe}\n"
        body_html += f'\n<p style="font-size:12px;color:#666"><a href="{html.escape(unsubscribe)}">Unsubscribe</a></p>'
    return RenderedInvitation(subject=subject, text=text, html=body_html)
