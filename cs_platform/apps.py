"""The kernel app: infrastructure every other app builds on (tenancy, jobs, outbound guard, API base,
and the domain-event outbox whose models live in :mod:`cs_platform.models`)."""

from django.apps import AppConfig


class CsPlatformConfig(AppConfig):
    name = "cs_platform"
    verbose_name = "Platform"

    def ready(self) -> None:
        # Registers the dispatch tasks with Celery (they live next to record_event, not in tasks.py,
        # because tasks.py is what events.py builds on: a module cycle otherwise).
        # Postgres row-level security (cs_platform/rls.py): the policies after every migrate, and the
        # application role and the per-connection tenancy settings on every new connection.
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from . import (
            events,  # noqa: F401
            rls,
        )

        post_migrate.connect(rls.post_migrate_policies, sender=self, dispatch_uid="retain_rls_policies")
        connection_created.connect(rls.on_connection_created, dispatch_uid="retain_rls_connection")
