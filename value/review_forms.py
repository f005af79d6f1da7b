"""Forms of the business-review pages: start a review, close it with the next review's objectives."""

from __future__ import annotations

from typing import Any

from django import forms

from .choices import ReviewKind
from .reviews import MAX_NEXT_OBJECTIVES, NextObjective


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


class StartReviewForm(forms.Form):
    """Kind and period; the period is prefilled with the last full fiscal quarter."""

    kind = forms.ChoiceField(choices=ReviewKind.choices, initial=ReviewKind.QBR)
    period_start = forms.DateField(widget=DateInput(), label="Period start")
    period_end = forms.DateField(widget=DateInput(), label="Period end")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("period_start"), data.get("period_end")
        if start and end and end < start:
            self.add_error("period_end", "The period must end on or after its start.")
        return data


class CloseReviewForm(forms.Form):
    """When the review was held, what was agreed, and when the next one is."""

    held_on = forms.DateField(widget=DateInput(), label="Held on")
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=5000, label="Summary")
    next_review_on = forms.DateField(widget=DateInput(), required=False, label="Next review on")


class NextObjectiveForm(forms.Form):
    """One objective for the next review; a row left empty is ignored."""

    title = forms.CharField(max_length=200, required=False, label="Objective")
    measure = forms.CharField(max_length=200, required=False, label="Customer's measure")
    baseline = forms.CharField(max_length=80, required=False, label="Baseline")
    target = forms.CharField(max_length=80, required=False, label="Target")
    due_date = forms.DateField(widget=DateInput(), required=False, label="Due")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        filled = any(data.get(name) for name in ("measure", "baseline", "target", "due_date"))
        if filled and not (data.get("title") or "").strip():
            self.add_error("title", "Give the objective a title (or clear the row).")
        return data

    def objective(self) -> NextObjective | None:
        data = self.cleaned_data
        if not (data.get("title") or "").strip():
            return None
        return NextObjective(
            title=data["title"],
            measure=data.get("measure") or "",
            baseline=data.get("baseline") or "",
            target=data.get("target") or "",
            due_date=data.get("due_date"),
        )


NextObjectiveFormSet = forms.formset_factory(
    NextObjectiveForm, extra=3, max_num=MAX_NEXT_OBJECTIVES, validate_max=True, absolute_max=MAX_NEXT_OBJECTIVES
)


def next_objectives(formset: Any) -> list[NextObjective]:
    """The filled rows of a valid formset."""
    return [o for o in (form.objective() for form in formset.forms) if o is not None]
