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

        # Segment rules may test an account's latest health (HealthScore, reverse one-to-one ``health``).
        from accounts.segments import register_field

        register_field("health_color", "health__color", "text")
        register_field("health_score", "health__score", "number")
