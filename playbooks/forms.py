"""Forms of the webhooks admin page."""

from __future__ import annotations

from typing import Any

from django import forms

from .models import EventType
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
