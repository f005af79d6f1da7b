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
