"""Forms of the server-rendered pages. Every choice list is drawn from the request's organization."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import SetPasswordForm
from django.utils import timezone

from cs_platform.imports import UnsupportedKind, check_kind, file_size_text, kind_choices

from .choices import ActivityType, ObjectiveStatus, Role, Sentiment
from .models import Account, Activity, ActivityContact, Contact, Membership, Objective, SuccessPlan

User = get_user_model()


class LocalDateTimeInput(forms.DateTimeInput):
    """An HTML ``datetime-local`` control (minutes precision, browser-native picker)."""

    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class ActivityForm(forms.ModelForm):
    """Log an activity on one account's timeline; contacts are limited to that account's contacts."""

    contacts = forms.ModelMultipleChoiceField(
        queryset=Contact.all_orgs.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Who took part (optional).",
    )

    class Meta:
        model = Activity
        fields = ["type", "occurred_at", "summary", "sentiment"]
        widgets = {
            "occurred_at": LocalDateTimeInput(),
            "summary": forms.Textarea(attrs={"rows": 3, "placeholder": "What happened, what was agreed, next step"}),
        }
        labels = {"occurred_at": "When", "type": "Type"}

    def __init__(self, *args: Any, account: Account, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        self.fields["type"].choices = ActivityType.choices
        self.fields["sentiment"].choices = [("", "—"), *Sentiment.choices]
        self.fields["sentiment"].required = False
        self.fields["summary"].required = True
        self.fields["contacts"].queryset = Contact.objects.for_org(account.organization_id).filter(
            account=account, is_active=True
        )
        if not self.is_bound:
            self.initial.setdefault("occurred_at", timezone.localtime().replace(second=0, microsecond=0))
            self.initial.setdefault("type", ActivityType.CALL)

    def clean_occurred_at(self) -> Any:
        value = self.cleaned_data["occurred_at"]
        # A timeline entry is a record of something that happened; a week of slack covers time zones and
        # meetings logged ahead of the day, anything further is almost certainly a typo in the year.
        if value and value > timezone.now() + dt.timedelta(days=7):
            raise forms.ValidationError("That is more than a week in the future; log activities once they happen.")
        return value

    def save_for(self, author: Any) -> Activity:
        """Create the activity on the form's account with ``author``, and its contact links."""
        activity = self.save(commit=False)
        activity.organization_id = self.account.organization_id
        activity.account = self.account
        activity.author = author
        activity.save()
        ActivityContact.all_orgs.bulk_create(
            [
                ActivityContact(organization_id=self.account.organization_id, activity=activity, contact=contact)
                for contact in self.cleaned_data.get("contacts") or []
            ]
        )
        return activity


class ObjectiveForm(forms.ModelForm):
    """Add an objective to an account's success plan (the plan is created on first use)."""

    class Meta:
        model = Objective
        fields = ["title", "customer_measure", "baseline", "target", "due_date", "status", "progress"]
        widgets = {"due_date": DateInput(), "progress": forms.NumberInput(attrs={"min": 0, "max": 100, "step": 5})}
        labels = {"customer_measure": "Customer's measure", "progress": "Progress %"}

    def __init__(self, *args: Any, account: Account, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account = account
        self.fields["status"].choices = ObjectiveStatus.choices

    def save_for_account(self) -> Objective:
        plan, _ = SuccessPlan.all_orgs.get_or_create(organization_id=self.account.organization_id, account=self.account)
        objective = self.save(commit=False)
        objective.organization_id = self.account.organization_id
        objective.plan = plan
        objective.save()
        return objective


class MemberRoleForm(forms.Form):
    """Change one member's role."""

    membership = forms.IntegerField(widget=forms.HiddenInput)
    role = forms.ChoiceField(choices=Role.choices)


class InviteMemberForm(forms.Form):
    """Invite a person to the organization by email: they join once they accept the emailed link."""

    email = forms.EmailField(help_text="They get a link by email; they join once they accept it.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.CSM)

    def __init__(self, *args: Any, organization: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if Membership.objects.for_org(self.organization).filter(user__email__iexact=email).exists():
            raise forms.ValidationError("This person is already a member; change their role in the list.")
        return email


class InvitedUserForm(SetPasswordForm):
    """An invitee without an account creates one: their name and a password (the email is the invitation's)."""

    name = forms.CharField(max_length=150, required=False, label="Your name")
    field_order = ["name", "new_password1", "new_password2"]

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        # The password validators compare against the future user's attributes (similarity to the email).
        super().__init__(User(username=email, email=email), *args, **kwargs)


class ApiKeyForm(forms.Form):
    """Create an API key with a role."""

    name = forms.CharField(max_length=120, initial="API key")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.VIEWER)


class ImportForm(forms.Form):
    """Upload one CSV file of one kind; ``dry_run`` validates and counts without writing anything."""

    # Every registered kind (each app declares its own), read when the form is built.
    kind = forms.ChoiceField(choices=kind_choices)
    file = forms.FileField(label="CSV file", help_text="UTF-8, a header row with the columns of the kind.")
    dry_run = forms.BooleanField(
        required=False, label="Dry run (validate only)", help_text="Check every row and count; write nothing."
    )

    def clean_kind(self) -> str:
        kind = self.cleaned_data["kind"]
        try:
            check_kind(kind)
        except UnsupportedKind as exc:
            raise forms.ValidationError(str(exc)) from None
        return kind

    def __init__(self, *args: Any, max_bytes: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_bytes = max_bytes

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if not upload.size:
            raise forms.ValidationError("The file is empty: a header row is required.")
        if self.max_bytes is not None and upload.size > self.max_bytes:
            raise forms.ValidationError(
                f"The file is larger than {file_size_text(self.max_bytes)}, this organization's limit per upload."
            )
        return upload
