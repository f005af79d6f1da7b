from typing import Any

from django.apps import AppConfig


def _create_defaults(sender: Any, organization: Any, **kwargs: Any) -> None:
    from .defaults import ensure_default_scorecard

    ensure_default_scorecard(organization.pk)


class HealthConfig(AppConfig):
    name = "health"

    def ready(self) -> None:
        from cs_platform.signals import organization_created

        organization_created.connect(_create_defaults, dispatch_uid="health-defaults")

        from .triggers import connect

        connect()
