"""The playbooks app: outbound automation (webhooks, segments) and the work queue (CTAs, tasks, notifications)."""

from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    name = "playbooks"

    def ready(self) -> None:
        from . import signals

        signals.connect()

        from cs_platform.signals import organization_created

        from .defaults import ensure_default_cta_types, ensure_default_segments

        def create_defaults(sender: object, organization: object, **kwargs: object) -> None:
            ensure_default_segments(organization.pk)  # type: ignore[attr-defined]
            ensure_default_cta_types(organization.pk)  # type: ignore[attr-defined]

        organization_created.connect(create_defaults, dispatch_uid="playbooks-defaults", weak=False)
