from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and tenancy"

    def ready(self) -> None:
        from . import events, signals  # noqa: F401  (signals: keeps current ARR in step with contract changes)

        events.connect()  # account.* and contact.departed domain events (docs/events.md)

        from .segment_fields import register as register_segment_fields

        register_segment_fields()  # team, days since last touch (derived fields of segment rules)

        from . import segment_membership, tasks  # noqa: F401  (tasks: registered for the by-name lookups)

        segment_membership.connect()  # stored members: the "segments" event consumer, refresh on save
