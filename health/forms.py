"""Forms of the health app's pages."""

from __future__ import annotations

from django import forms

from .models import KeyFeature


class KeyFeatureForm(forms.Form):
    """Flag a ``track`` event name as a key feature. Validate inside the organization's scope."""

    event_name = forms.CharField(
        max_length=200, help_text="The track event name exactly as your product sends it (case-sensitive)."
    )
    label = forms.CharField(max_length=200, required=False, help_text="Defaults to the event name.")

    def clean_event_name(self) -> str:
        name = self.cleaned_data["event_name"].strip()
        if not name:
            raise forms.ValidationError("Enter the event name.")
        existing = KeyFeature.objects.filter(event_name=name).first()
        if existing is not None:
            raise forms.ValidationError(f"“{name}” is already flagged as the key feature “{existing.label}”.")
        return name

    def clean(self) -> dict:
        data = super().clean()
        if data.get("event_name") and not (data.get("label") or "").strip():
            data["label"] = data["event_name"]
        else:
            data["label"] = (data.get("label") or "").strip()
        return data
