"""The inbound SMTP listener of email to the timeline (aiosmtpd 1.4.6), run by ``manage.py email_listener``.

* ``RCPT TO``: only a current capture address (``<slug>+<token>@CAPTURE_DOMAIN``) is accepted; any other
  recipient is refused at the door with ``550`` (nothing is stored).
* Size: ``EMAIL_CAPTURE_MAX_BYTES`` (10 MB) is announced in ``EHLO`` (``SIZE``) and enforced by aiosmtpd
  (``552`` for a bigger ``DATA``).
* ``DATA``: the raw bytes are stored once per organization addressed (an ``InboundEmail`` row), then a
  Celery task processes them; the ``250`` answer comes only after the rows are committed, so nothing
  accepted is lost (a failure to store answers ``451``, and the sender retries).

The handler's coroutines hand the database work to a thread (Django's ORM is synchronous).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.controller import Controller
from django.conf import settings
from django.db import connections

from .choices import InboundSource

logger = logging.getLogger(__name__)

__all__ = ["CaptureHandler", "build_controller"]


def _in_thread(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    finally:
        connections.close_all()  # the executor's threads must not hold test or idle connections


class CaptureHandler:
    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="email-listener")

    async def _run(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, _in_thread, fn, *args)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        from .email_capture import find_capture

        capture = await self._run(find_capture, address)
        if capture is None:
            return "550 5.1.1 Not a capture address"
        orgs = envelope.__dict__.setdefault("capture_orgs", [])
        if capture.organization_id not in orgs:
            orgs.append(capture.organization_id)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from .email_capture import store_inbound

        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            sender = envelope.mail_from or ""
            for org_id in envelope.__dict__.get("capture_orgs", []):
                await self._run(store_inbound, org_id, raw, InboundSource.SMTP, sender)
        except Exception:
            logger.exception("email listener: could not store a message")
            return "451 4.3.0 Could not store the message, try again later"
        return "250 OK: captured"

    def close(self) -> None:
        self.executor.shutdown(wait=True)


def build_controller(host: str | None = None, port: int | None = None) -> Controller:
    """The listener's aiosmtpd Controller (not started): ``controller.start()`` / ``controller.stop()``."""
    handler = CaptureHandler()
    return Controller(
        handler,
        hostname=host or settings.EMAIL_LISTENER_HOST,
        port=port if port is not None else settings.EMAIL_LISTENER_PORT,
        data_size_limit=settings.EMAIL_CAPTURE_MAX_BYTES,
        server_hostname=settings.CAPTURE_DOMAIN,
        ident="Retain email capture",
    )
