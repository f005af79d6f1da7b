"""Forms of the webhooks admin page."""

from __future__ import annotations

from typing import Any

from django import forms

from .choices import SUBSCRIBABLE_NOTIFICATION_KINDS, ordered_notification_kinds
from .models import ChatKind, EventType
from .services import SUBSCRIBABLE, validate_webhook_url


class WebhookEndpointForm(forms.Form):
    """Register an endpoint: URL, what it is for, and the event types it receives."""

    url = forms.CharField(
        label="Endpoint URL",
        max_length=2000,
        help_text=(
            "http:// or https:// on a public internet address (no loopback, private or metadata address unless "
            "the operator allowed that network); redirects are not followed."
        ),
    )
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label="Events",
        choices=[(t, f"{EventType(t).label} ({t})") for t in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
    )

    def clean_url(self) -> str:
        return validate_webhook_url(self.cleaned_data["url"])

    def clean_event_types(self) -> list[str]:
        chosen: Any = set(self.cleaned_data["event_types"])
        return [t for t in SUBSCRIBABLE if t in chosen]


class ChatReceivesForm(forms.Form):
    """What a chat channel receives besides playbook posts: the daily digest and notification kinds (on its
    own, the form that changes an existing channel's subscriptions)."""

    daily_digest = forms.BooleanField(label="Post the daily digest here", required=False)
    notification_kinds = forms.MultipleChoiceField(
        label="Also post these notifications",
        choices=SUBSCRIBABLE_NOTIFICATION_KINDS,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Any member's in-app notification of these kinds, with the account, reason, ARR, health and a link.",
    )

    def clean_notification_kinds(self) -> list[str]:
        return ordered_notification_kinds(self.cleaned_data["notification_kinds"])


class ChatChannelForm(ChatReceivesForm):
    """Add a Slack or Teams channel: its incoming-webhook URL (stored encrypted, never shown again)."""

    field_order = ["kind", "name", "webhook_url", "daily_digest", "notification_kinds"]
    kind = forms.ChoiceField(label="Chat app", choices=ChatKind.choices)
    name = forms.CharField(label="Channel name", max_length=120, help_text="How playbooks name it, e.g. #cs-alerts.")
    webhook_url = forms.CharField(
        label="Incoming webhook URL",
        max_length=2000,
        widget=forms.PasswordInput(render_value=False),
        help_text="Slack: the channel's Incoming Webhook URL. Teams: the Workflows webhook URL. Stored encrypted; "
        "it is never shown again (only its host and last 4 characters).",
    )

    def __init__(self, *args: Any, organization: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean_name(self) -> str:
        from .models import ChatChannel

        name = self.cleaned_data["name"].strip()
        if ChatChannel.objects.for_org(self.organization).filter(name=name).exists():
            raise forms.ValidationError("A chat channel with this name already exists.")
        return name

    def clean_webhook_url(self) -> str:
        from .chat import validate_chat_url

        return validate_chat_url(self.cleaned_data["webhook_url"])
