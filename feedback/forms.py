"""Forms of the survey admin pages (the same rules as the API serializers)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from accounts.choices import ContactRole
from accounts.models import Account, Segment

from .emails import validate_email_source
from .models import Survey, SurveySettings
from .models_surveys import SendSchedule


class SurveyForm(forms.ModelForm):
    class Meta:
        model = Survey
        fields = ["name", "kind", "question", "comment_question", "email_subject", "email_body", "active"]
        widgets = {"email_body": forms.Textarea(attrs={"rows": 6}), "question": forms.TextInput()}

    def __init__(self, *args: Any, organization: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        clash = Survey.objects.for_org(self.organization).filter(name=name).exclude(pk=self.instance.pk or 0)
        if clash.exists():
            raise ValidationError("Another survey has this name.")
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("email_subject", "email_body"):
            if data.get(name):
                try:
                    validate_email_source(data[name], field=name)
                except ValidationError as exc:
                    for field, messages in exc.message_dict.items():
                        self.add_error(field, messages)
        if self.instance.pk and data.get("kind") and data["kind"] != self.instance.kind:
            reason = self.instance.kind_locked_reason()
            if reason:
                self.add_error("kind", reason)
        return data


class SendForm(forms.Form):
    target = forms.ChoiceField(choices=[("segment", "A segment"), ("account", "One account")], initial="segment")
    segment = forms.ModelChoiceField(queryset=Segment.all_orgs.none(), required=False)
    account = forms.ModelChoiceField(queryset=Account.all_orgs.none(), required=False)
    roles = forms.MultipleChoiceField(
        choices=ContactRole.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every contact",
    )  # fmt: skip
    schedule = forms.ChoiceField(choices=SendSchedule.choices, initial=SendSchedule.ONCE)
    interval_weeks = forms.IntegerField(
        min_value=1, max_value=52, required=False, help_text="Recurring: weeks between runs"
    )
    drip_days = forms.IntegerField(
        min_value=0, max_value=60, initial=0, required=False,
        help_text="Spread each run's emails over this many days (0: all at once)",
    )  # fmt: skip

    def __init__(self, *args: Any, organization: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["segment"].queryset = Segment.objects.for_org(organization).order_by("position", "name")
        self.fields["account"].queryset = Account.objects.for_org(organization).order_by("name")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        target = data.get("target")
        if target == "segment" and not data.get("segment"):
            self.add_error("segment", "Choose the segment.")
        if target == "account" and not data.get("account"):
            self.add_error("account", "Choose the account.")
        if data.get("schedule") == SendSchedule.RECURRING and not data.get("interval_weeks"):
            self.add_error("interval_weeks", "A recurring send needs the weeks between runs.")
        return data


class SurveySettingsForm(forms.ModelForm):
    class Meta:
        model = SurveySettings
        fields = ["throttle_days", "link_days", "nps_benchmark", "csat_benchmark", "ces_benchmark"]

    def clean_throttle_days(self) -> int:
        value = self.cleaned_data["throttle_days"]
        if value > 730:
            raise ValidationError("At most 730 days.")
        return value

    def clean_link_days(self) -> int:
        value = self.cleaned_data["link_days"]
        if not 1 <= value <= 365:
            raise ValidationError("Between 1 and 365 days.")
        return value
