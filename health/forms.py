"""Forms of the health app's pages."""

from __future__ import annotations

from django import forms

from .models import HealthColor, KeyFeature, OverrideReason, PulseReason


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


class OverrideForm(forms.Form):
    """Override an account's health colour (reason required; default expiry 30 days)."""

    # No preselected colour either: a form opened on a red account must not suggest green.
    color = forms.ChoiceField(choices=[("", "Choose a colour…"), *HealthColor.choices], label="Colour")
    # No preselected reason: the first one, "customer will churn", forces red, so a default would silently
    # turn a chosen green into red.
    reason_code = forms.ChoiceField(
        choices=[("", "Choose a reason…"), *OverrideReason.choices],
        label="Reason",
        help_text="“Customer told us they will churn” always sets red.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), label="Why", help_text="Kept in the audit trail."
    )
    expires_on = forms.DateField(
        required=False,
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Default: in 30 days.",
    )

    def clean(self):
        data = super().clean()
        if data.get("reason_code") == OverrideReason.CUSTOMER_WILL_CHURN and data.get("color", "red") != "red":
            self.add_error("color", "“Customer told us they will churn” always sets red: pick red or another reason.")
        return data

    def clean_expires_on(self):
        value = self.cleaned_data.get("expires_on")
        if value is None:
            return None
        from django.utils import timezone

        if value <= timezone.localdate():
            raise forms.ValidationError("Pick a day after today.")
        return value


class PulseForm(forms.Form):
    """The CSM's read of the account, with reasons (the ``csm_pulse`` signal)."""

    color = forms.ChoiceField(choices=HealthColor.choices, label="Your read", widget=forms.RadioSelect)
    reason_codes = forms.MultipleChoiceField(
        choices=PulseReason.choices, required=False, label="Reasons", widget=forms.CheckboxSelectMultiple
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Note")


class ScorecardForm(forms.Form):
    """A scorecard's settings (name, binding, order, active) and the note of a new version. The definition
    itself comes from the structured editor (``health.editor``) or, in the advanced view, from the
    ``definition`` JSON textarea (parsed by :func:`parse_definition_json`); both are checked by
    ``health.scoring.validate_definition``."""

    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    segment = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="— every account (fallback) —",
        help_text="Accounts of this segment use this scorecard.",
    )
    position = forms.IntegerField(min_value=0, initial=100, help_text="Bindings are tried in this order.")
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    definition = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"class": "def-json", "spellcheck": "false"}),
        help_text="Groups and components as JSON (advanced).",
    )
    note = forms.CharField(
        max_length=300,
        required=False,
        label="What changed",
        help_text="Required to save a changed definition; stored with the new version.",
    )

    def __init__(self, *args, organization=None, is_default: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        from accounts.models import Segment

        self.is_default = is_default
        self.fields["segment"].queryset = Segment.objects.for_org(organization).order_by("position", "name")
        if is_default:
            self.fields["segment"].disabled = True
            self.fields["is_active"].disabled = True


class NewScorecardForm(ScorecardForm):
    """Create a scorecard: its settings only; the definition starts as a copy of the default's."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["definition"]
        del self.fields["note"]


def parse_definition_json(raw: str) -> tuple[object | None, list[tuple[str, str]]]:
    """The definition typed in the JSON view and its problems as ``(path, message)`` (parse errors under
    the path ``definition``)."""
    import json

    from .scoring import validate_definition

    try:
        definition = json.loads(raw or "")
    except json.JSONDecodeError as exc:
        return None, [("definition", f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")]
    return definition, validate_definition(definition)


class VersionNoteForm(forms.Form):
    """The note of a publish or a rollback: required, kept with the version and in the audit log."""

    note = forms.CharField(
        max_length=300,
        label="Why",
        help_text="Required: stored with the version and in the audit log.",
        error_messages={"required": "write a note: it says why, in the history and the audit log."},
    )

    def clean_note(self) -> str:
        note = self.cleaned_data["note"].strip()
        if not note:
            raise forms.ValidationError("write a note: it says why, in the history and the audit log.")
        return note
