from typing import Any

from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "feedback"

    def ready(self) -> None:
        # Segment rules may test an account's NPS (accounts.segments' registry; accounts imports nothing of feedback).
        from .segment_fields import register as register_segment_fields

        register_segment_fields()

        # Feature requests: Account 360's panel (accounts.composition) and the demo's linked requests.
        from accounts.composition import AccountPanel, register_account_panel
        from accounts.demo import register_demo_module

        from .request_views import account_requests

        register_account_panel(
            AccountPanel(
                key="feedback-requests",
                slot="bottom",
                order=30,
                template="feedback/_account_requests.html",
                context=account_requests,
            )
        )
        register_demo_module("feedback-requests", "feedback.demo_requests", order=40)

        # Account 360's survey responses panel (accounts.composition), after health, before renewals.
        register_account_panel(
            AccountPanel(
                key="survey-responses",
                slot="bottom",
                order=5,
                template="feedback/_account_responses.html",
                context=_account_responses,
            )
        )

        # My book's "New detractors" panel (spec §7.1), after the work queue's and renewals' panels.
        from accounts.composition import PagePanel, register_page_context, register_page_panel

        register_page_context("my-book", "feedback", _my_book)
        register_page_panel("my-book", PagePanel(key="feedback", order=40, template="feedback/_book_detractors.html"))

        # The demo (accounts.demo): surveys, sends and answered responses, after health's signals and before
        # the playbooks (30), which run over what the lower layers seeded.
        register_demo_module("feedback", "feedback.demo", order=25)

        # The tasks' names are registered in every process (tasks.py is the app's top: nothing imports it).
        from . import tasks  # noqa: F401


def _my_book(request: Any) -> dict[str, Any]:
    from .views import my_book_context  # views import models: not while apps load

    return my_book_context(request)


def _account_responses(request: Any, account: Any) -> dict[str, Any]:
    from .views import account_responses  # views import models: not while apps load

    return account_responses(request, account)
