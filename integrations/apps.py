"""The integrations app: the connector framework, its connectors, API and admin page."""

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        # Registers the connectors (each module calls connectors.base.register) and the Celery tasks.
        from . import tasks  # noqa: F401
        from .connectors import autodiscover

        autodiscover()

        # Account 360's "Source" panel: the CRM record the account was synced from, linked back.
        from accounts.composition import AccountPanel, register_account_panel

        from .panels import account_sources

        register_account_panel(
            AccountPanel(
                key="integrations-sources",
                slot="bottom",
                order=90,
                template="integrations/_account_sources.html",
                context=account_sources,
            )
        )
