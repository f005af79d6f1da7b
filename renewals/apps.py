from typing import Any

from django.apps import AppConfig


def _create_defaults(sender: Any, organization: Any, **kwargs: Any) -> None:
    from .defaults import ensure_default_churn_reasons

    ensure_default_churn_reasons(organization.pk)


class RenewalsConfig(AppConfig):
    name = "renewals"

    def ready(self) -> None:
        from cs_platform.signals import organization_created

        organization_created.connect(_create_defaults, dispatch_uid="renewals-defaults")
