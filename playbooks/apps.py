"""The playbooks app: outbound automation (webhooks now; playbooks and CTAs with their issue)."""

from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    name = "playbooks"

    def ready(self) -> None:
        from . import signals

        signals.connect()
