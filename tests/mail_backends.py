"""A mail backend for tests of delivery failures: Django's locmem backend (messages land in
``django.core.mail.outbox``) in front of a mail server that accepts ``FlakyBackend.budget`` messages and
then refuses every other one with the error ``smtplib`` raises when the server drops the connection.
``budget = None`` (the default) accepts everything. A stand-in for an SMTP server, not for Postgres or Redis."""

from __future__ import annotations

import smtplib
from typing import Any, ClassVar

from django.core.mail.backends import locmem

PATH = "tests.mail_backends.FlakyBackend"


class FlakyBackend(locmem.EmailBackend):
    budget: ClassVar[int | None] = None

    def send_messages(self, messages: Any) -> int:
        for _message in messages:
            if FlakyBackend.budget is not None:
                if FlakyBackend.budget <= 0:
                    raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
                FlakyBackend.budget -= 1
        return super().send_messages(messages)
