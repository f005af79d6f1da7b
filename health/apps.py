from typing import Any

from django.apps import AppConfig


def _create_defaults(sender: Any, organization: Any, **kwargs: Any) -> None:
    from .defaults import ensure_default_scorecard

    ensure_default_scorecard(organization.pk)


def _account_health(request: Any, account: Any) -> dict[str, Any]:
    from .views import health_panel_context  # views import forms and models: not while apps load

    return health_panel_context(request, account)


#: My book's health colour filter (the effective colour; "none" = not scored).
HEALTH_COLOR_CHOICES = [("red", "Red"), ("yellow", "Yellow"), ("green", "Green"), ("none", "Unscored")]


def _my_book_health(request: Any) -> dict[str, Any]:
    return {"health_colors": HEALTH_COLOR_CHOICES}


class HealthConfig(AppConfig):
    name = "health"

    def ready(self) -> None:
        from cs_platform.signals import organization_created

        organization_created.connect(_create_defaults, dispatch_uid="health-defaults")

        # The demo (accounts.demo): health signals and score history, after renewals (order 20).
        from accounts.demo import register_demo_module

        register_demo_module("health", "health.demo", order=20)
        register_demo_module("health-issue-keys", "health.demo_issue_keys", order=50)

        # The feature request page (feedback) lists the helpdesk tickets carrying its issue key.
        from feedback.requests import RequestSection, register_request_section

        from .tickets import request_tickets_section

        register_request_section(
            RequestSection(
                key="health-tickets", order=10, template="health/_request_tickets.html", context=request_tickets_section
            )  # fmt: skip
        )

        # Register health's Celery tasks in every process (web included): the rollup and the triggers
        # queue them by name (health.queueing), since they must not import health.tasks.
        from . import tasks  # noqa: F401
        from .triggers import connect

        connect()

        # Segment rules may test an account's health, score changes, usage trend and open P1 tickets
        # (accounts.segments' registry; accounts imports nothing of health).
        from .segment_fields import register as register_segment_fields

        register_segment_fields()

        # Account 360's health panel (above the timeline; its context also feeds the page header's
        # health figure) and My book's colour filter: accounts.composition, accounts imports nothing of health.
        from accounts.composition import AccountPanel, register_account_panel, register_page_context

        register_account_panel(
            AccountPanel(
                key="health", slot="top", order=10, template="health/_account_health.html", context=_account_health
            )
        )
        register_page_context("my-book", "health", _my_book_health)
