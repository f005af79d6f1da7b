from typing import Any

from django.apps import AppConfig


def _create_defaults(sender: Any, organization: Any, **kwargs: Any) -> None:
    from .onboarding import ensure_default_template

    ensure_default_template(organization.pk)


def _account_onboarding(request: Any, account: Any) -> dict[str, Any]:
    from .onboarding_views import account_panel  # views import forms and models: not while apps load

    return account_panel(request, account)


def _account_reviews(request: Any, account: Any) -> dict[str, Any]:
    from .review_views import account_reviews_panel  # views import models: not while apps load

    return account_reviews_panel(request, account)


def _portfolio_onboarding(request: Any) -> dict[str, Any]:
    from .ttv_views import portfolio_section  # views import forms and models: not while apps load

    return portfolio_section(request)


class ValueConfig(AppConfig):
    """The value-story app: layer 6, above renewals and below playbooks (docs/architecture.md)."""

    name = "value"
    verbose_name = "Value story"

    def ready(self) -> None:
        # Every new organization gets the default onboarding template (migration 0003 gave existing ones theirs).
        from cs_platform.signals import organization_created

        organization_created.connect(_create_defaults, dispatch_uid="value-onboarding-defaults")

        # The stall detection's beat tasks are registered in every process (the import).
        # Account 360's panels (accounts.composition): the onboarding project's progress and clock (or the
        # handoff to fill in), then the business reviews.
        from accounts.composition import (
            AccountPanel,
            PagePanel,
            register_account_panel,
            register_page_context,
            register_page_panel,
        )

        from . import tasks  # noqa: F401

        register_account_panel(
            AccountPanel(
                key="onboarding",
                slot="bottom",
                order=3,
                template="value/_account_onboarding.html",
                context=_account_onboarding,
            )
        )
        register_account_panel(
            AccountPanel(
                key="value-reviews",
                slot="bottom",
                order=25,
                template="value/_account_reviews.html",
                context=_account_reviews,
            )
        )

        # Portfolio's onboarding section (time to value, share at risk), after health's own panels.
        register_page_context("portfolio", "value-onboarding", _portfolio_onboarding)
        register_page_panel("portfolio", PagePanel(key="onboarding", order=10, template="value/_portfolio_ttv.html"))

        # The demo (accounts.demo), after every module that makes accounts, contracts and score history
        # (renewals 10 … health 50): handoffs and onboarding projects for the newer accounts; acquisition costs
        # per segment and a few per account, sized on the accounts' ARR; closed QBRs whose frozen reports hold
        # real figures.
        from accounts.demo import register_demo_module

        register_demo_module("value", "value.demo", order=60)
        register_demo_module("value-economics", "value.demo_economics", order=60)
        register_demo_module("value-reviews", "value.demo_reviews", order=60)
