"""Forms of the playbook editor (``/o/<slug>/admin/playbooks/…``): real form fields, no JSON to type.

* :class:`PlaybookForm`: name, description, trigger and **its parameters** (one group of fields per trigger,
  generated from ``playbooks.triggers.TRIGGERS``' parameter definitions, named ``tp_<trigger>_<param>``; only
  the chosen trigger's group is read), segment filter, cooldown and optional conditions (segment rules).
* ``ActionForm`` (``playbooks/playbook_action_forms.py``): one action (prefix ``a<i>``): its kind and the
  fields of every kind, grouped; only the chosen kind's fields are read. The page shows the actions plus a
  blank one; "Add another action" adds more.

The forms only *parse* (text to number, comma lists to lists); what is valid is decided by
``playbooks.validation.validate_playbook``, the API's validator, and each problem it reports by path
(``trigger_params.days``, ``actions.0.tasks.1.title``) is shown on the field that path names
(:func:`apply_problems`).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms

from accounts.choices import ContactRole
from accounts.models import Segment

from .models_engine import Playbook, TriggerKind
from .playbook_action_forms import ActionForm, action_forms, add_error_once, mark_optional, parse_number
from .triggers import TRIGGERS, Param

__all__ = ["PlaybookForm", "action_forms", "apply_problems", "trigger_in_words"]

PARAM_LABELS = {
    "days": "Days",
    "points": "Points",
    "colors": "Colours",
    "category": "Response category",
    "percent": "Drop, in %",
    "metric": "Usage metric",
    "roles": "Contact roles",
    "stages": "Only these stages",
    "segment": "Segment",
    "every": "Every",
    "reasons": "Stalled because",
}


def _words(values: Any) -> str:
    return ", ".join(str(v) for v in values) if isinstance(values, list) else str(values)


def trigger_in_words(playbook: Playbook, segment_names: dict[int, str] | None = None) -> str:
    """ "Renewal due in N days (days: 90)": the trigger's label and its parameters. ``segment_names`` (the
    organization's segments by id, read once by a list of playbooks) spares a query per segment trigger."""
    label = TriggerKind(playbook.trigger).label if playbook.trigger in TriggerKind.values else playbook.trigger
    params = playbook.trigger_params or {}
    if not params:
        return label
    shown = []
    for name, value in params.items():
        if name == "segment":
            if segment_names is not None:
                value = segment_names.get(int(value), value) if str(value).isdigit() else value
            else:
                segment = Segment.objects.for_org(playbook.organization_id).filter(pk=value).first()
                value = segment.name if segment else value
        shown.append(f"{PARAM_LABELS.get(name, name).lower()}: {_words(value)}")
    return f"{label} ({'; '.join(shown)})"


# --- The playbook --------------------------------------------------------------------------------------


class PlaybookForm(forms.Form):
    """The playbook's own fields and every trigger's parameter fields (see the module docstring)."""

    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    trigger = forms.ChoiceField(
        choices=TriggerKind.choices,
        help_text="Then fill in its parameters below (only the chosen trigger's are used).",
    )
    segment = forms.ChoiceField(
        required=False, label="Only accounts in segment", help_text="Leave empty for every account."
    )
    cooldown_days = forms.CharField(
        initial="0",
        label="Cooldown per account, in days",
        help_text="After firing for an account, do not fire again for it for this many days (0: no cooldown).",
        widget=forms.TextInput(attrs={"inputmode": "numeric"}),
    )
    conditions = forms.CharField(
        required=False,
        label="Extra conditions (segment rules, JSON)",
        help_text='Like a segment\'s rules, e.g. {"match": "all", "conditions": [{"field": "arr", "op": "gte", '
        '"value": "100000"}]}. Fields and operators: docs/segments.md.',
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, organization: Any, playbook: Playbook | None = None, **kwargs: Any) -> None:
        if playbook is not None and "initial" not in kwargs and not args:
            kwargs["initial"] = {
                "name": playbook.name,
                "description": playbook.description,
                "trigger": playbook.trigger,
                "segment": str(playbook.segment_id or ""),
                "cooldown_days": str(playbook.cooldown_days),
                "conditions": json.dumps(playbook.conditions) if playbook.conditions else "",
            }
        super().__init__(*args, **kwargs)
        self.organization = organization
        segments = list(Segment.objects.for_org(organization).order_by("position", "name").values_list("pk", "name"))
        self.fields["segment"].choices = [("", "— every account"), *[(str(pk), name) for pk, name in segments]]
        self.param_groups: list[tuple[str, str, list[str]]] = []
        current = playbook.trigger_params if playbook is not None else {}
        for kind, spec in TRIGGERS.items():
            names = []
            for name, param in spec.params.items():
                field_name = f"tp_{kind}_{name}"
                field = _param_field(param, name, segments)
                stored = (current or {}).get(name) if playbook is not None and playbook.trigger == kind else None
                value = stored if stored is not None else param.default
                if value is not None:
                    field.initial = ", ".join(value) if param.kind == "texts" else value
                field.optional = param.default is not None  # type: ignore[attr-defined]
                self.fields[field_name] = field
                names.append(field_name)
            self.param_groups.append((kind, TriggerKind(kind).label, names))
        mark_optional(self, ["description", "segment", "conditions"])

    def param_fieldsets(self) -> list[dict[str, Any]]:
        """Per trigger: its key, label and bound parameter fields (for the template)."""
        chosen = self["trigger"].value()
        return [
            {"kind": kind, "label": label, "fields": [self[n] for n in names], "chosen": kind == chosen}
            for kind, label, names in self.param_groups
        ]

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Give the playbook a name.")
        return name

    def payload(self) -> dict[str, Any]:
        """The playbook's fields as the API takes them, parsed but not judged (call after ``is_valid()``)."""
        data = self.cleaned_data
        kind = data.get("trigger", "")
        params: dict[str, Any] = {}
        for name, param in TRIGGERS[kind].params.items() if kind in TRIGGERS else ():
            raw = data.get(f"tp_{kind}_{name}")
            if raw in (None, "", []):
                if param.kind in ("choices", "roles", "texts"):
                    params[name] = []  # no box ticked: the validator says whether that is allowed
                continue
            if param.kind in ("int", "segment"):
                raw = parse_number(raw)
            elif param.kind == "texts":
                raw = [part.strip() for part in raw.split(",") if part.strip()]
            elif param.kind in ("choices", "roles"):
                raw = list(raw)
            params[name] = raw
        conditions: Any = {}
        text = (data.get("conditions") or "").strip()
        if text:
            try:
                conditions = json.loads(text)
            except ValueError as exc:
                self.add_error("conditions", f"Not valid JSON ({exc.msg}, line {exc.lineno}).")
                conditions = {}
        segment = data.get("segment") or None
        return {
            "name": data.get("name", ""),
            "description": data.get("description", ""),
            "trigger": kind,
            "trigger_params": params,
            "conditions": conditions,
            "segment_id": parse_number(segment) if segment else None,
            "cooldown_days": parse_number(data.get("cooldown_days") or "0"),
        }


def _param_field(param: Param, name: str, segments: list[tuple[int, str]]) -> forms.Field:
    label = PARAM_LABELS.get(name, name.replace("_", " ").capitalize())
    if param.kind == "int":
        return forms.CharField(
            required=False,
            label=label,
            help_text=f"A whole number from {param.low} to {param.high}.",
            widget=forms.TextInput(attrs={"inputmode": "numeric"}),
        )
    if param.kind == "choice":
        choices = [] if param.default is not None else [("", "—")]
        return forms.ChoiceField(required=False, label=label, choices=choices + [(c, c) for c in param.choices])
    if param.kind in ("choices", "roles"):
        choices = [(c, c) for c in param.choices] if param.kind == "choices" else ContactRole.choices
        help_text = "None chosen: any key contact." if param.kind == "roles" else ""
        return forms.MultipleChoiceField(
            required=False, label=label, choices=choices, widget=forms.CheckboxSelectMultiple, help_text=help_text
        )
    if param.kind == "texts":
        return forms.CharField(required=False, label=label, help_text="Separated by commas; empty: any.")
    if param.kind == "segment":
        return forms.ChoiceField(
            required=False, label=label, choices=[("", "—"), *[(str(pk), n) for pk, n in segments]]
        )
    return forms.CharField(required=False, label=label, help_text=param.help or "")


def apply_problems(form: PlaybookForm, forms_: list[ActionForm], used: list[ActionForm],
                   problems: list[tuple[str, str]]) -> list[str]:  # fmt: skip
    """Show each ``(path, message)`` of the validator on the field it names; returns the problems that
    belong to no field (``actions``: "Add at least one action.")."""
    loose: list[str] = []
    kind = form.cleaned_data.get("trigger", "")
    for path, message in problems:
        head, _, rest = path.partition(".")
        if head == "trigger_params" and rest:
            name = rest.split(".")[0]
            field = f"tp_{kind}_{name}"
            add_error_once(form, field if field in form.fields else "trigger", message)
        elif head in ("trigger", "trigger_params"):
            add_error_once(form, "trigger", message)
        elif head == "conditions":
            add_error_once(form, "conditions", f"{rest}: {message}" if rest else message)
        elif head in ("segment", "cooldown_days"):
            add_error_once(form, head, message)
        elif head == "actions" and rest:
            index, _, tail = rest.partition(".")
            if index.isdigit() and int(index) < len(used):
                used[int(index)].show_problem(tail, message)
            else:
                loose.append(message)
        else:
            loose.append(message)
    return loose
