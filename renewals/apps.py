from typing import Any

from django.apps import AppConfig


def _create_defaults(sender: Any, organization: Any, **kwargs: Any) -> None:
    from .defaults import ensure_default_churn_reasons

    ensure_default_churn_reasons(organization.pk)


def _account_renewals(request: Any, account: Any) -> dict[str, Any]:
    from .views import account_renewals  # views import forms and models: not while apps load

    return account_renewals(account)


def _scorecard_backtest(request: Any, scorecard: Any) -> dict[str, Any]:
    from .backtest_views import scorecard_section  # views import forms and models: not while apps load

    return scorecard_section(request, scorecard)


def _my_book(request: Any) -> dict[str, Any]:
    from .views import MyRenewals  # views import forms and models: not while apps load

    return {"my_renewals": MyRenewals(request)}


class RenewalsConfig(AppConfig):
    name = "renewals"

    def ready(self) -> None:
        from cs_platform.signals import organization_created

        organization_created.connect(_create_defaults, dispatch_uid="renewals-defaults")

        # Register renewals' Celery tasks in every process (web included): the backtest service queues
        # its task by name (renewals.backtest.BACKTEST_TASK), since it must not import renewals.tasks.
        # The demo (accounts.demo): contract histories with their renewals; its hooks run first (order 10).
        from accounts.demo import register_demo_module

        from . import tasks  # noqa: F401

        register_demo_module("renewals", "renewals.demo", order=10)

        # Segment rules may test the days to the account's next renewal (accounts.segments' registry).
        from .segment_fields import register as register_segment_fields

        register_segment_fields()

        # Account 360's renewal panel (after the success plan): accounts.composition.
        from accounts.composition import AccountPanel, register_account_panel

        register_account_panel(
            AccountPanel(
                key="renewals",
                slot="bottom",
                order=10,
                template="renewals/_account_renewals.html",
                context=_account_renewals,
            )
        )

        # My book's "Renewals in the next 90 days" panel (spec §7.1), after the work queue's panels.
        from accounts.composition import PagePanel, register_page_context, register_page_panel

        register_page_context("my-book", "renewals", _my_book)
        register_page_panel("my-book", PagePanel(key="renewals", order=30, template="renewals/_book_renewals.html"))

        # The scorecard editor's "Backtest against past renewals" section (health.scorecard_sections).
        from health.scorecard_sections import ScorecardSection, register_scorecard_section

        register_scorecard_section(
            ScorecardSection(
                key="backtest", order=10, template="renewals/_scorecard_backtest.html", context=_scorecard_backtest
            )
        )
