"""Forms of the work-queue admin pages: CTA types and reasons, email templates."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from .emails import MERGE_FIELDS, validate_template_source
from .models import EmailTemplate


class LabelForm(forms.Form):
    """Add or rename a CTA type or reason: just its label."""

    label = forms.CharField(max_length=80)


class EmailTemplateForm(forms.ModelForm):
    """An email template: name, subject and body, merge fields validated (playbooks.emails)."""

    class Meta:
        model = EmailTemplate
        fields = ["name", "subject", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 12})}
        help_texts = {
            "subject": "Merge fields work here too, e.g. {{ account.name }}.",
            "body": "Plain text; blank lines separate paragraphs. Merge fields: "
            + ", ".join("{{ " + name + " }}" for name in MERGE_FIELDS)
            + ". An unsubscribe link is added to every message.",
        }

    def __init__(self, *args, organization=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization

    def _validated(self, field: str) -> str:
        source = self.cleaned_data[field]
        try:
            validate_template_source(source, field=field)
        except ValidationError as exc:
            raise forms.ValidationError(exc.message_dict[field]) from None
        return source

    def clean_subject(self) -> str:
        return self._validated("subject")

    def clean_body(self) -> str:
        return self._validated("body")

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        others = EmailTemplate.objects.for_org(self.organization).filter(name__iexact=name)
        if self.instance.pk:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError("Another template has this name.")
        return name
