from typing import Any

from django.apps import AppConfig


def _create_defaults(sender: Any, organization: Any, **kwargs: Any) -> None:
    from .onboarding import ensure_default_template

    ensure_default_template(organization.pk)


def _account_onboarding(request: Any, account: Any) -> dict[str, Any]:
    from .onboarding_views import account_panel  # views import forms and models: not while apps load

    return account_panel(request, account)


class ValueConfig(AppConfig):
    """The value-story app: layer 6, above renewals and below playbooks (docs/architecture.md)."""

    name = "value"
    verbose_name = "Value story"

    def ready(self) -> None:
        # Every new organization gets the default onboarding template (migration 0003 gave existing ones theirs).
        from cs_platform.signals import organization_created

        organization_created.connect(_create_defaults, dispatch_uid="value-onboarding-defaults")

        # Account 360's onboarding panel: the project's progress and clock, or the handoff to fill in.
        from accounts.composition import AccountPanel, register_account_panel

        register_account_panel(
            AccountPanel(
                key="onboarding",
                slot="bottom",
                order=3,
                template="value/_account_onboarding.html",
                context=_account_onboarding,
            )
        )
