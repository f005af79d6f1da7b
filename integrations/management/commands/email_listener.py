"""``manage.py email_listener``: the inbound SMTP listener of email to the timeline (integrations.smtp_listener)."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from integrations.smtp_listener import build_controller


class Command(BaseCommand):
    help = "Accept mail for the organizations' capture addresses over SMTP and queue it for the timeline."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=settings.EMAIL_LISTENER_HOST)
        parser.add_argument("--port", type=int, default=settings.EMAIL_LISTENER_PORT)

    def handle(self, *args: Any, host: str, port: int, **options: Any) -> None:
        controller = build_controller(host, port)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        controller.start()
        self.stdout.write(f"email listener on {host}:{port} for *@{settings.CAPTURE_DOMAIN}")
        try:
            stop.wait()
        finally:
            controller.stop()
            controller.handler.close()
