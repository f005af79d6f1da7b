from django.apps import AppConfig


class ValueConfig(AppConfig):
    """The value-story app: layer 6, above renewals and below playbooks (docs/architecture.md)."""

    name = "value"
    verbose_name = "Value story"

    def ready(self) -> None:
        from accounts.demo import register_demo_module

        # Acquisition costs per segment and a few per account, after every module that makes accounts and
        # contracts (renewals 10 … health 50): they are sized on the accounts' ARR.
        register_demo_module("value-economics", "value.demo_economics", order=60)
