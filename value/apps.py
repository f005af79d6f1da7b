from typing import Any

from django.apps import AppConfig


def _portfolio_onboarding(request: Any) -> dict[str, Any]:
    from .ttv_views import portfolio_section  # views import forms and models: not while apps load

    return portfolio_section(request)


class ValueConfig(AppConfig):
    """The value-story app: layer 6, above renewals and below playbooks (docs/architecture.md)."""

    name = "value"
    verbose_name = "Value story"

    def ready(self) -> None:
        # The stall detection's beat tasks are registered in every process (the import). The demo
        # (accounts.demo): handoffs and onboarding projects for the newer accounts, after every other app's
        # rows (order 60).
        from accounts.demo import register_demo_module

        from . import tasks  # noqa: F401

        register_demo_module("value", "value.demo", order=60)

        # Portfolio's onboarding section (time to value, share at risk), after health's own panels.
        from accounts.composition import PagePanel, register_page_context, register_page_panel

        register_page_context("portfolio", "value-onboarding", _portfolio_onboarding)
        register_page_panel("portfolio", PagePanel(key="onboarding", order=10, template="value/_portfolio_ttv.html"))
        # Acquisition costs per segment and a few per account, after every module that makes accounts and
        # contracts (renewals 10 … health 50): they are sized on the accounts' ARR.
        register_demo_module("value-economics", "value.demo_economics", order=60)

        # Business reviews: Account 360's panel (accounts.composition) and the demo's closed QBRs
        # (accounts.demo, after health's score history at 50, so the frozen reports hold real figures).
        from accounts.composition import AccountPanel, register_account_panel

        register_account_panel(
            AccountPanel(
                key="value-reviews",
                slot="bottom",
                order=25,
                template="value/_account_reviews.html",
                context=_account_reviews,
            )
        )
        register_demo_module("value-reviews", "value.demo_reviews", order=60)


def _account_reviews(request: Any, account: Any) -> dict[str, Any]:
    from .review_views import account_reviews_panel  # views import models: not while apps load

    return account_reviews_panel(request, account)
