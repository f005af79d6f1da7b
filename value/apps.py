from django.apps import AppConfig


class ValueConfig(AppConfig):
    """The value-story app: layer 6, above renewals and below playbooks (docs/architecture.md)."""

    name = "value"
    verbose_name = "Value story"
