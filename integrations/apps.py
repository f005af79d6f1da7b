"""The integrations app: the connector framework, its connectors, API and admin page."""

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        # Registers the connectors (each module calls connectors.base.register) and the Celery tasks.
        from . import tasks  # noqa: F401
        from .connectors import autodiscover

        autodiscover()
