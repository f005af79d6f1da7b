"""The playbooks app: outbound automation (webhooks, segments) and the work queue (CTAs, tasks, notifications)."""

from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    name = "playbooks"

    def ready(self) -> None:
        from cs_platform.events import EVENT_NAMES, register_consumer
        from cs_platform.signals import organization_created

        # Registers deliver_webhook with Celery in every process: services names it, never imports it.
        from . import tasks  # noqa: F401
        from .defaults import ensure_default_cta_types, ensure_default_segments
        from .services import CONSUMER_NAME, deliver_event

        # Outbound webhooks are one consumer of the domain-event stream (docs/events.md).
        register_consumer(CONSUMER_NAME, deliver_event, names=EVENT_NAMES)
        # The playbook engine is another: event-driven triggers fire within seconds of their event.
        from .engine import CONSUMER_NAME as ENGINE
        from .engine import on_event
        from .triggers import CONSUMED_EVENTS

        register_consumer(ENGINE, on_event, names=CONSUMED_EVENTS)
        # Feature requests (feedback): a status change notifies the linked accounts' CSMs; a link's blocked
        # renewal is checked here, above both feedback and renewals (which never import each other).
        from feedback.requests import register_renewal_check

        from . import feature_requests

        register_consumer(
            feature_requests.CONSUMER_NAME, feature_requests.on_status_changed, names=feature_requests.EVENTS
        )
        register_renewal_check("renewals", feature_requests.check_blocked_renewal)

        def create_defaults(sender: object, organization: object, **kwargs: object) -> None:
            ensure_default_segments(organization.pk)  # type: ignore[attr-defined]
            ensure_default_cta_types(organization.pk)  # type: ignore[attr-defined]

        organization_created.connect(create_defaults, dispatch_uid="playbooks-defaults", weak=False)

        # /metrics (cs_platform/ops.py): webhook deliveries that gave up after their retries, per event type.
        from cs_platform.ops import register_failure_source

        def failed_deliveries() -> dict[str, int]:
            from django.db.models import Count

            from .models import DeliveryStatus, WebhookDelivery

            rows = WebhookDelivery.all_orgs.filter(status=DeliveryStatus.FAILED).values("event_type")
            return {row["event_type"]: row["n"] for row in rows.annotate(n=Count("id")).order_by("event_type")}

        register_failure_source("webhook_delivery", failed_deliveries)

        # seed_demo's playbooks part: default playbooks, run through the engine (after renewals 10, health 20).
        from accounts.demo import register_demo_module

        register_demo_module("playbooks", "playbooks.demo", order=30)

        # Account 360's CTA panel after the renewal panel, and My book's work (accounts.composition).
        from accounts.composition import (
            AccountColumn,
            AccountPanel,
            PagePanel,
            register_account_column,
            register_account_panel,
            register_page_context,
            register_page_panel,
        )

        from . import screens

        register_account_panel(
            AccountPanel(
                key="playbooks-ctas",
                slot="bottom",
                order=20,
                template="playbooks/_account_ctas.html",
                context=screens.account_ctas,
            )
        )
        register_page_context("my-book", "playbooks-work", screens.my_book_context)
        register_page_panel("my-book", PagePanel(key="playbooks-ctas", order=10, template="playbooks/_book_ctas.html"))
        register_page_panel(
            "my-book", PagePanel(key="playbooks-tasks", order=20, template="playbooks/_book_tasks.html")
        )
        # The VoC dashboard's detractors: each account's open CTA (feedback cannot import playbooks).
        register_account_column(
            "voice-detractors",
            AccountColumn(
                key="detractor-cta",
                order=10,
                header="Follow-up CTA",
                template="playbooks/_cell_detractor_cta.html",
                values=screens.detractor_ctas,
            ),
        )
        register_account_column(
            "my-book",
            AccountColumn(
                key="open-ctas",
                order=10,
                header="Open CTAs",
                template="playbooks/_cell_open_ctas.html",
                values=screens.open_cta_counts,
            ),
        )
