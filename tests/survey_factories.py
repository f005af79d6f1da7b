"""Builders for survey tests: a survey, a send run at a moment, a sent invitation with its raw token."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core import mail
from django.utils import timezone

from feedback.models import Survey, SurveyInvitation
from feedback.services import create_send, run_send


def make_survey(org: Any, kind: str = "nps", **values: Any) -> Survey:
    defaults = {
        "name": f"{kind.upper()} survey {Survey.all_orgs.count() + 1}",
        "kind": kind,
        "question": "How likely are you to recommend us to a friend or colleague?",
        "email_subject": "{{ account.name }}: a quick question",
        "email_body": "Hi {{ contact.first_name }},\n\nOne question, one click.",
    }
    return Survey.all_orgs.create(organization=org, **{**defaults, **values})


def token_from_mail(message: Any) -> str:
    """The raw token of the response link in an invitation email."""
    link = next(line for line in message.body.splitlines() if "/s/" in line)
    return link.rsplit("/s/", 1)[1].strip().rstrip("/")


def invite(contact: Any, survey: Survey | None = None, *, now: datetime | None = None) -> tuple[SurveyInvitation, str]:
    """Send ``survey`` to ``contact``'s account (that contact only, by a unique role) and return the
    invitation with the raw token read from the email."""
    survey = survey or make_survey(contact.organization)
    before = len(mail.outbox)
    send = create_send(survey, account=contact.account, roles=[], now=now)
    run_send(send, now=now or timezone.now())
    invitation = SurveyInvitation.all_orgs.get(send=send, contact=contact)
    message = next(m for m in mail.outbox[before:] if m.to == [contact.email])
    return invitation, token_from_mail(message)
