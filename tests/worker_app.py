"""The Celery app of worker subprocesses that need more than Retain's own app (``celery -A tests.worker_app``).

Retain's app (:mod:`cs_platform.celery`) with two test-only additions, both from the environment:

* ``RETAIN_TEST_TASK_ROUTES``: JSON task routes replacing ``CELERY_TASK_ROUTES`` (a worker sends the
  tasks it queues itself, e.g. the webhook delivery tries, to the test's own queue rather than to the
  shared ``outbound`` queue, which the test's worker must not consume).
* ``RETAIN_TEST_HOLD_DISPATCH``: a directory. A domain-event consumer ``test-hold`` is registered for
  ``health.color_changed``; when it runs it writes ``holding`` (the event id) there and then waits, so
  the test can kill the worker while it holds a dispatch (the event's row locked, the other consumers'
  writes uncommitted). It gives up after :data:`HOLD_SECONDS` so a test that never kills cannot hang.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from celery.signals import task_prerun

from cs_platform.celery import app

__all__ = ["app"]

HOLD_SECONDS = 60

if os.environ.get("RETAIN_TEST_TASK_ROUTES"):
    app.conf.task_routes = json.loads(os.environ["RETAIN_TEST_TASK_ROUTES"])

HOLD_DIR = os.environ.get("RETAIN_TEST_HOLD_DISPATCH")


def _hold(event: Any) -> None:
    Path(HOLD_DIR, "holding").write_text(str(event.pk))
    deadline = time.monotonic() + HOLD_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.05)


def _register_hold(**_: Any) -> None:
    # At the first task, not at import: registering needs Django's apps, set up by Celery's Django fixup
    # after this module is loaded. After the webhook consumer (registered in PlaybooksConfig.ready), so
    # the dispatch holds the webhook's delivery row, uncommitted, when it is killed.
    from cs_platform.events import register_consumer

    register_consumer("test-hold", _hold, names=["health.color_changed"])


if HOLD_DIR:
    task_prerun.connect(_register_hold, weak=False)
