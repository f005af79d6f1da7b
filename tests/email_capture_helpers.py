"""Helpers of the email-to-the-timeline tests: building messages, a free loopback port, a started listener."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from django.utils import timezone

from integrations.smtp_listener import build_controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message(
    *,
    sender: str,
    to: str,
    cc: str = "",
    subject: str = "Renewal questions",
    body: str = "Hello, a few questions about the renewal.",
    message_id: str | None = None,
    html: str | None = None,
    attachment: tuple[str, bytes] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(timezone.now())
    msg["Message-ID"] = message_id or make_msgid(domain="mail.example")
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    if attachment is not None:
        name, data = attachment
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg


@contextmanager
def listener() -> Iterator[tuple[str, int]]:
    """The management command's Controller, started on a free loopback port."""
    port = free_port()
    controller = build_controller("127.0.0.1", port)
    controller.start()
    try:
        yield "127.0.0.1", port
    finally:
        controller.stop()
        controller.handler.close()
