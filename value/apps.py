from typing import Any

from django.apps import AppConfig


class ValueConfig(AppConfig):
    """The value-story app: layer 6, above renewals and below playbooks (docs/architecture.md)."""

    name = "value"
    verbose_name = "Value story"

    def ready(self) -> None:
        # Business reviews: Account 360's panel (accounts.composition) and the demo's closed QBRs
        # (accounts.demo, after health's score history at 50, so the frozen reports hold real figures).
        from accounts.composition import AccountPanel, register_account_panel
        from accounts.demo import register_demo_module

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
