"""The playbooks app: outbound automation (webhooks now; playbooks and CTAs with their issue)."""

from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    name = "playbooks"

    def ready(self) -> None:
        from . import signals

        signals.connect()

        from cs_platform.signals import organization_created

        from .defaults import ensure_default_segments

        def create_defaults(sender: object, organization: object, **kwargs: object) -> None:
            ensure_default_segments(organization.pk)  # type: ignore[attr-defined]

        organization_created.connect(create_defaults, dispatch_uid="playbooks-defaults", weak=False)

        # Account 360's CTA panel (a placeholder until CTAs arrive), after the renewal panel.
        from accounts.composition import AccountPanel, register_account_panel

        register_account_panel(
            AccountPanel(key="playbooks-ctas", slot="bottom", order=20, template="playbooks/_account_ctas.html")
        )
