from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    name = "feedback"

    def ready(self) -> None:
        # Segment rules may test an account's NPS (accounts.segments' registry; accounts imports nothing of feedback).
        from .segment_fields import register as register_segment_fields

        register_segment_fields()
