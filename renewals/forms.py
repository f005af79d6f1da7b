"""Forms of the renewal pages: the forecast (CSM call, final call) and the outcome with successor lines.

Choice lists come from the renewal's organization (churn reasons of its taxonomy). The forms check
what a person can fix in the browser (a missing churn reason, a negative quantity); the service
(``renewals.services``) remains the authority and its ``ValidationError`` is shown per field too.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.validators import MaxValueValidator, MinValueValidator

from accounts.choices import Role
from accounts.forms import DateInput
from accounts.models import ContractLine, Membership, Product

from .models import ChurnReason, ForecastCategory, Renewal, RenewalOutcome, RenewalStage
from .services import FORECAST_FIELDS
from .services import _term_end as term_end

User = get_user_model()


class MoneyInput(forms.TextInput):
    """A money amount shown as people write it: ``2,842,215.00``, not ``2842215.00`` (a text input with a
    decimal keypad: a number input cannot show grouping separators)."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"inputmode": "decimal", "autocomplete": "off", "class": "input-money", **(attrs or {})})

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
            return f"{Decimal(str(value)):,.2f}"
        return super().format_value(value)


class MoneyField(forms.DecimalField):
    """A decimal amount that also accepts what people paste: grouping commas, spaces and a currency sign
    (``$2,842,215``, ``2 842 215.00``, ``USD 1,200``)."""

    widget = MoneyInput

    def to_python(self, value: Any) -> Decimal | None:
        if isinstance(value, str):
            value = value.strip()
            for prefix in ("USD", "EUR", "GBP", "CAD", "AUD", "JPY", "INR"):
                value = value.removeprefix(prefix)
            value = value.replace(",", "").replace(" ", "").replace("\u00a0", "").lstrip("$€£¥₹").strip()
        return super().to_python(value)

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        attrs = super().widget_attrs(widget)
        for key in ("step", "min", "max"):  # number-input attributes mean nothing on a text input
            attrs.pop(key, None)
        return attrs


LOSS_OUTCOMES = {RenewalOutcome.CONTRACTED, RenewalOutcome.CHURNED}
#: Stages a person sets while the renewal is open; ``won``/``lost`` follow from closing it.
OPEN_STAGES = [(RenewalStage.NOT_STARTED, "Not started"), (RenewalStage.IN_PROGRESS, "In progress"),
               (RenewalStage.VERBAL, "Verbal")]  # fmt: skip


class ForecastForm(forms.ModelForm):
    """The open renewal's forecast. ``final_call`` fields only for leaders and admins."""

    class Meta:
        model = Renewal
        fields = list(FORECAST_FIELDS)  # exactly what update_forecast accepts
        labels = {
            "forecast_arr": "Forecast ARR",
            "probability": "Probability (%)",
            "csm_call": "CSM call",
            "csm_call_arr": "CSM call ARR",
            "final_call": "Final call",
            "final_call_arr": "Final call ARR",
        }
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}
        field_classes = {"forecast_arr": MoneyField, "csm_call_arr": MoneyField, "final_call_arr": MoneyField}

    def __init__(self, *args: Any, can_final_call: bool, org: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["stage"].choices = OPEN_STAGES
        currency = getattr(org, "currency", "") or "USD"
        for name in ("forecast_arr", "csm_call_arr", "final_call_arr"):
            if name in self.fields:
                self.fields[name].label = f"{self.fields[name].label} ({currency})"
        for name in ("csm_call", "final_call"):
            self.fields[name].choices = [("", "—"), *ForecastCategory.choices]
        if can_final_call:
            # Leaders and admins may hand the renewal to someone else (the service checks their teams).
            members = Membership.objects.for_org(org).exclude(role=Role.VIEWER).values_list("user_id", flat=True)
            self.fields["owner"].queryset = User.objects.filter(pk__in=members).order_by("first_name", "email")
            self.fields["owner"].label_from_instance = lambda u: u.get_full_name() or u.email
        else:
            del self.fields["final_call"], self.fields["final_call_arr"], self.fields["owner"]

    def changes(self) -> dict[str, Any]:
        """The edited fields and their new values (what ``update_forecast`` takes)."""
        return {name: self.cleaned_data[name] for name in self.changed_data if name in self.fields}


class OutcomeForm(forms.Form):
    """How the renewal closed. Lines come from :class:`SuccessorLineFormSet`."""

    outcome = forms.ChoiceField(choices=[("", "Choose…"), *RenewalOutcome.choices])
    start_date = forms.DateField(widget=DateInput(), label="New contract start", required=False)
    end_date = forms.DateField(widget=DateInput(), label="New contract end", required=False)
    churn_reason = forms.ModelChoiceField(
        queryset=ChurnReason.all_orgs.none(),
        required=False,
        empty_label="—",
        help_text="Required when the customer contracted or churned.",
    )
    churn_notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Notes")
    closed_on = forms.DateField(widget=DateInput(), required=False, label="Closed on")

    def __init__(self, *args: Any, renewal: Renewal, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.renewal = renewal
        self.fields["churn_reason"].queryset = ChurnReason.objects.for_org(renewal.organization_id).filter(
            is_active=True
        )
        if not self.is_bound:
            # The service's defaults, shown: start the day after the old end, keep the old term.
            start = renewal.contract.end_date + dt.timedelta(days=1)
            self.initial.update(start_date=start, end_date=term_end(renewal.contract, start), closed_on=dt.date.today())

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        outcome = data.get("outcome")
        if outcome and outcome not in LOSS_OUTCOMES:
            data["churn_reason"] = None  # a reason picked before switching to a gain is not recorded
        if outcome in LOSS_OUTCOMES and not data.get("churn_reason"):
            self.add_error(
                "churn_reason", "Choose why: a churn reason is required when the customer contracted or churned."
            )
        start, end = data.get("start_date"), data.get("end_date")
        if outcome and outcome != RenewalOutcome.CHURNED and start and end and end < start:
            self.add_error("end_date", "The new contract cannot end before it starts.")
        return data


class SuccessorLineForm(forms.Form):
    """One product of the ending contract, as it continues (or not) on the successor contract."""

    product_id = forms.IntegerField(widget=forms.HiddenInput)
    keep = forms.BooleanField(required=False, initial=True, label="Keep")
    quantity = forms.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    annual_unit_price = MoneyField(
        max_digits=14, decimal_places=2, validators=[MinValueValidator(0)], label="Unit price / yr"
    )
    discount = forms.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        label="Discount (%)",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("keep") and data.get("quantity") == 0:
            self.add_error("quantity", "A kept product needs a quantity; untick Keep to drop it.")
        return data


SuccessorLineFormSet = forms.formset_factory(SuccessorLineForm, extra=0)


class AddLineForm(forms.Form):
    """A product the customer adds on renewal (optional: leave the product empty)."""

    product = forms.ModelChoiceField(queryset=Product.all_orgs.none(), required=False, empty_label="—")
    quantity = forms.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)], required=False)
    annual_unit_price = MoneyField(
        max_digits=14, decimal_places=2, validators=[MinValueValidator(0)], required=False, label="Unit price / yr"
    )
    discount = forms.DecimalField(
        max_digits=5,
        decimal_places=2,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        required=False,
        initial=0,
        label="Discount (%)",
    )

    def __init__(self, *args: Any, renewal: Renewal, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        on_contract = ContractLine.objects.for_org(renewal.organization_id).filter(contract_id=renewal.contract_id)
        self.fields["product"].queryset = (
            Product.objects.for_org(renewal.organization_id)
            .exclude(pk__in=on_contract.values("product_id"))
            .order_by("name")
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("product"):
            for name in ("quantity", "annual_unit_price"):
                if data.get(name) in (None, ""):
                    self.add_error(name, "Required for an added product.")
            if data.get("discount") is None:
                data["discount"] = Decimal("0")
        return data


def line_initial(lines: list[ContractLine]) -> list[dict[str, Any]]:
    """The successor lines start as a copy of the ending contract's lines."""
    return [
        {
            "product_id": line.product_id,
            "keep": True,
            "quantity": line.quantity,
            "annual_unit_price": line.annual_unit_price,
            "discount": (line.discount * 100).quantize(Decimal("0.01")),
        }
        for line in lines
    ]
