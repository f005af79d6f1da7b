"""Forms of the feature request pages (board, request page, Account 360 panel)."""

from __future__ import annotations

from typing import Any

from django import forms

from .models_requests import RequestImportance, RequestStatus, RequestType

__all__ = ["AccountRequestForm", "LinkForm", "MergeForm", "RequestForm", "StatusForm"]


class RequestForm(forms.Form):
    """A new request (the board), or its edit (the request page)."""

    title = forms.CharField(max_length=200)
    type = forms.ChoiceField(choices=RequestType.choices, initial=RequestType.FEATURE)
    product_area = forms.CharField(max_length=80, required=False, label="Product area",
                                   help_text="For instance Reporting, Integrations, Mobile.")  # fmt: skip
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    external_issue_key = forms.CharField(max_length=64, required=False, label="Issue key",
                                         help_text="The tracker's issue, such as PROD-42.")  # fmt: skip
    external_issue_url = forms.URLField(max_length=500, required=False, label="Issue URL", assume_scheme="https")


class LinkFields(forms.Form):
    importance = forms.ChoiceField(choices=RequestImportance.choices, initial=RequestImportance.MEDIUM)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    blocked_renewal_id = forms.IntegerField(min_value=1, required=False, label="Blocked renewal (id)",
                                            help_text="The open renewal this request holds up.")  # fmt: skip
    blocked_deal = forms.CharField(max_length=120, required=False, label="Lost deal (CRM reference)")


class LinkForm(LinkFields):
    """Link an account to a request (the request page): the account by external id or exact name."""

    account = forms.CharField(max_length=200, help_text="The account's external id or exact name.")
    field_order = ["account", "importance", "comment", "blocked_renewal_id", "blocked_deal"]


class AccountRequestForm(LinkFields):
    """Account 360: link the account to an existing request, or create one for it (prefixed: the page holds
    other forms)."""

    prefix = "fr"
    request = forms.TypedChoiceField(coerce=int, required=False, label="Existing request", empty_value=None)
    title = forms.CharField(max_length=200, required=False, label="Or a new request: title")
    # Labels unlike the page's other forms ("Type" is the timeline's activity type on Account 360).
    type = forms.ChoiceField(choices=RequestType.choices, initial=RequestType.FEATURE, required=False,
                             label="A new request is a")  # fmt: skip
    product_area = forms.CharField(max_length=80, required=False, label="New request's product area")
    field_order = ["request", "title", "type", "product_area", "importance", "comment", "blocked_renewal_id",
                   "blocked_deal"]  # fmt: skip

    def __init__(self, *args: Any, request_choices: list[tuple[int, str]] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["request"].choices = [("", "— a new request —"), *request_choices]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("request") and not (data.get("title") or "").strip():
            self.add_error("title", "Choose an existing request or give the new one a title.")
        return data


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=RequestStatus.choices)
    note = forms.CharField(max_length=300, required=False)


class MergeForm(forms.Form):
    into = forms.TypedChoiceField(coerce=int, label="Merge this request into")

    def __init__(self, *args: Any, choices: list[tuple[int, str]] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["into"].choices = [("", "— choose the request to keep —"), *choices]
