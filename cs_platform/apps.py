"""The kernel app: infrastructure every other app builds on (tenancy, jobs, outbound guard, API base,
and the domain-event outbox whose models live in :mod:`cs_platform.models`)."""

from django.apps import AppConfig


class CsPlatformConfig(AppConfig):
    name = "cs_platform"
    verbose_name = "Platform"

    def ready(self) -> None:
        # Registers the dispatch tasks with Celery (they live next to record_event, not in tasks.py,
        # because tasks.py is what events.py builds on: a module cycle otherwise).
        from . import events  # noqa: F401
