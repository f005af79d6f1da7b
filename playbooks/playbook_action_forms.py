"""The actions part of the playbook editor (``playbooks/playbook_forms.py``): :class:`ActionForm`, one action
of any kind (prefix ``a<i>``), and :func:`action_forms`, the page's list of them (a server-side formset: the
posted ones plus blank ones). Forms only parse; ``playbooks.validation`` judges (see playbook_forms)."""

from __future__ import annotations

from typing import Any

from django import forms

from accounts.choices import ContactRole, TouchModel
from accounts.models import Membership, Team

from .actions import ACTION_KINDS, MAX_ACTIONS, SETTABLE_FIELDS
from .choices import AssigneeRule, CtaPriority
from .models import ChatChannel, CtaReason, CtaType, EmailTemplate

__all__ = ["ACTION_LABELS", "ActionForm", "action_forms", "add_error_once", "mark_optional", "parse_number"]

ACTION_LABELS = {
    "open_cta": "Open a CTA",
    "send_email": "Send a templated email",
    "notify": "Notify a user",
    "set_field": "Set a field",
    "webhook": "Call the outbound webhooks",
    "enrol_survey": "Enrol contacts in a survey (not available yet: recorded, does nothing)",
    "post_to_chat": "Post to a Slack or Teams channel",
}
#: Task rows offered per "open a CTA" action (more when the action already has more tasks).
TASK_ROWS = 3


def parse_number(text: str) -> Any:
    """A whole number when the text is one; else the text itself, for the validator to refuse in its words."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return text


# --- Actions -------------------------------------------------------------------------------------------


#: Where a problem of ``actions.<i>.<name>`` is shown, per action kind (``tasks.<j>.<x>``: task row j).
ERROR_FIELDS = {
    "open_cta": {
        "type": "cta_reason",
        "reason": "cta_reason",
        "title": "cta_title",
        "description": "cta_description",
        "priority": "cta_priority",
        "due_in_days": "cta_due_in_days",
        "assignee": "cta_assignee",
        "team": "cta_team",
    },
    "send_email": {"template": "email_template", "roles": "email_roles"},
    "notify": {"to": "notify_to", "user": "notify_user", "message": "notify_message"},
    "set_field": {"field": "set_field", "value": "set_value", "op": "set_op"},
    "enrol_survey": {"survey": "survey", "roles": "survey"},
    "post_to_chat": {"channel": "chat_channel", "message": "chat_message"},
}


class ActionForm(forms.Form):
    """One action of the playbook, any kind (see the module docstring)."""

    kind = forms.ChoiceField(required=False, label="Action")
    cta_reason = forms.ChoiceField(required=False, label="CTA type and reason")
    cta_title = forms.CharField(required=False, max_length=200, label="CTA title", help_text="Empty: the reason.")
    cta_description = forms.CharField(
        required=False, max_length=2000, label="CTA description", widget=forms.Textarea(attrs={"rows": 2})
    )
    cta_priority = forms.ChoiceField(
        required=False,
        label="Priority",
        choices=[("", "Computed from ARR, health and renewal"), *CtaPriority.choices],
    )
    cta_due_in_days = forms.CharField(
        required=False, label="CTA due in (days)", widget=forms.TextInput(attrs={"inputmode": "numeric"})
    )
    cta_assignee = forms.ChoiceField(required=False, label="Assign the CTA to", choices=AssigneeRule.choices)
    cta_team = forms.ChoiceField(required=False, label="Team (for round-robin)")
    email_template = forms.ChoiceField(required=False, label="Email template")
    email_roles = forms.MultipleChoiceField(
        required=False,
        label="To the contacts with role",
        choices=ContactRole.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="None chosen: every contact. Unsubscribed and departed contacts are skipped.",
    )
    notify_to = forms.ChoiceField(
        required=False,
        label="Notify",
        choices=[("owner", "The account owner"), ("manager", "The owner's team manager"), ("user", "A user")],
    )
    notify_user = forms.ChoiceField(required=False, label="User (when notifying a user)")
    notify_message = forms.CharField(
        required=False, max_length=300, label="Message", help_text="Merge fields: {{ account.name }}."
    )
    set_field = forms.ChoiceField(
        required=False,
        label="Field",
        choices=[(f, f.replace("_", " ").capitalize()) for f in SETTABLE_FIELDS],
    )
    set_value = forms.CharField(
        required=False,
        label="Value",
        help_text=f"Touch model: {', '.join(TouchModel.values)}; a stage's name; a tag.",
    )
    set_op = forms.ChoiceField(
        required=False, label="For tags", choices=[("add", "Add the tag"), ("remove", "Remove the tag")]
    )
    survey = forms.CharField(required=False, max_length=120, label="Survey (name)")
    chat_channel = forms.ChoiceField(required=False, label="Chat channel")
    chat_message = forms.CharField(
        required=False, max_length=500, label="Chat message",
        help_text="Above the account, reason, ARR, health and link. Merge fields: {{ account.name }}.",
    )  # fmt: skip

    def __init__(self, *args: Any, organization: Any, action: dict[str, Any] | None = None, **kwargs: Any) -> None:
        action = action or {}
        tasks = action.get("tasks") or [] if action.get("kind") == "open_cta" else []
        if action and "initial" not in kwargs and not args:
            kwargs["initial"] = _initial(action)
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["kind"].choices = [("", "— none (removed on save)"), *ACTION_LABELS.items()]
        types = CtaType.objects.for_org(organization).filter(is_active=True).order_by("position", "label")
        reasons = CtaReason.objects.for_org(organization).filter(is_active=True).order_by("position", "label")
        by_type: dict[int, list[tuple[str, str]]] = {}
        keys = {t.pk: t.key for t in types}
        for r in reasons:
            if r.type_id in keys:
                by_type.setdefault(r.type_id, []).append((f"{keys[r.type_id]}/{r.key}", r.label))
        self.fields["cta_reason"].choices = [("", "—"), *[(t.label, by_type.get(t.pk, [])) for t in types]]
        teams = Team.objects.for_org(organization).order_by("name").values_list("pk", "name")
        self.fields["cta_team"].choices = [("", "—"), *[(str(pk), name) for pk, name in teams]]
        templates = EmailTemplate.objects.for_org(organization).filter(is_active=True).order_by("name")
        self.fields["email_template"].choices = [("", "—"), *[(str(t.pk), t.name) for t in templates]]
        members = Membership.objects.for_org(organization).select_related("user").order_by("user__email")
        self.fields["notify_user"].choices = [
            ("", "—"),
            *[(str(m.user_id), m.user.get_full_name() or m.user.email) for m in members],
        ]
        channels = ChatChannel.objects.for_org(organization).filter(is_active=True).order_by("name")
        self.fields["chat_channel"].choices = [
            ("", "—"),
            *[(str(c.pk), f"{c.name} ({c.get_kind_display()})") for c in channels],
        ]
        # Task rows: the stored ones plus blanks, or as many as the posted form has.
        rows = max(TASK_ROWS, len(tasks) + 1)
        if self.is_bound:
            rows = max(
                TASK_ROWS, sum(1 for k in self.data if k.startswith(f"{self.prefix}-task") and k.endswith("_title"))
            )
        assignees = [("", "As the CTA"), *AssigneeRule.choices]
        for j in range(rows):
            self.fields[f"task{j}_title"] = forms.CharField(required=False, label=f"Task {j + 1}", max_length=200)
            self.fields[f"task{j}_due_in_days"] = forms.CharField(
                required=False,
                label=f"Task {j + 1} due in (days)",
                widget=forms.TextInput(attrs={"inputmode": "numeric"}),
            )
            self.fields[f"task{j}_assignee"] = forms.ChoiceField(
                required=False, label=f"Task {j + 1} assigned to", choices=assignees
            )
        for j, task in enumerate(tasks if not self.is_bound else []):
            self.initial[f"task{j}_title"] = task.get("title", "")
            self.initial[f"task{j}_due_in_days"] = "" if task.get("due_in_days") is None else task["due_in_days"]
            self.initial[f"task{j}_assignee"] = task.get("assignee") or ""
        self.task_rows = rows
        optional = ["cta_title", "cta_description", "cta_priority", "cta_due_in_days", "cta_team", "email_roles",
                    "survey", "chat_message"]  # fmt: skip
        mark_optional(self, [*optional, *[n for n in self.fields if n.startswith("task")]])

    @property
    def chosen(self) -> str:
        return self["kind"].value() or ""

    def task_fields(self) -> list[tuple[Any, Any, Any]]:
        return [
            (self[f"task{j}_title"], self[f"task{j}_due_in_days"], self[f"task{j}_assignee"])
            for j in range(self.task_rows)
        ]

    def groups(self) -> list[dict[str, Any]]:
        """Per kind, its fields (bound), for the template."""
        names = {
            "open_cta": [
                "cta_reason",
                "cta_title",
                "cta_description",
                "cta_priority",
                "cta_due_in_days",
                "cta_assignee",
                "cta_team",
            ],
            "send_email": ["email_template", "email_roles"],
            "notify": ["notify_to", "notify_user", "notify_message"],
            "set_field": ["set_field", "set_value", "set_op"],
            "webhook": [],
            "enrol_survey": ["survey"],
            "post_to_chat": ["chat_channel", "chat_message"],
        }
        return [
            {"kind": k, "label": ACTION_LABELS[k], "fields": [self[n] for n in names[k]], "chosen": k == self.chosen}
            for k in ACTION_KINDS
        ]

    def action(self) -> dict[str, Any] | None:
        """The action as the API takes it, parsed but not judged; ``None`` for a blank slot."""
        d = self.cleaned_data
        kind = d.get("kind")
        if not kind:
            return None
        if kind == "open_cta":
            type_key, _, reason_key = (d.get("cta_reason") or "").partition("/")
            out: dict[str, Any] = {"kind": kind, "type": type_key, "reason": reason_key}
            if d.get("cta_title"):
                out["title"] = d["cta_title"]
            if d.get("cta_description"):
                out["description"] = d["cta_description"]
            if d.get("cta_priority"):
                out["priority"] = d["cta_priority"]
            if (d.get("cta_due_in_days") or "").strip():
                out["due_in_days"] = parse_number(d["cta_due_in_days"])
            out["assignee"] = d.get("cta_assignee") or AssigneeRule.OWNER
            if d.get("cta_team"):
                out["team"] = parse_number(d["cta_team"])
            tasks = []
            self.task_index = []
            for j in range(self.task_rows):
                title = (d.get(f"task{j}_title") or "").strip()
                if not title:
                    continue
                task: dict[str, Any] = {"title": title}
                if (d.get(f"task{j}_due_in_days") or "").strip():
                    task["due_in_days"] = parse_number(d[f"task{j}_due_in_days"])
                if d.get(f"task{j}_assignee"):
                    task["assignee"] = d[f"task{j}_assignee"]
                tasks.append(task)
                self.task_index.append(j)
            out["tasks"] = tasks
            return out
        if kind == "send_email":
            template, roles = d.get("email_template"), d.get("email_roles") or []
            return {"kind": kind, "template": parse_number(template) if template else None, "roles": roles}
        if kind == "notify":
            out = {"kind": kind, "to": d.get("notify_to"), "message": d.get("notify_message") or ""}
            if d.get("notify_to") == "user":
                out["user"] = parse_number(d["notify_user"]) if d.get("notify_user") else None
            return out
        if kind == "set_field":
            out = {"kind": kind, "field": d.get("set_field"), "value": (d.get("set_value") or "").strip()}
            if d.get("set_field") == "tags":
                out["op"] = d.get("set_op") or "add"
            return out
        if kind == "enrol_survey":
            return {"kind": kind, **({"survey": d["survey"]} if d.get("survey") else {})}
        if kind == "post_to_chat":
            channel = d.get("chat_channel")
            out = {"kind": kind, "channel": parse_number(channel) if channel else None}
            if (d.get("chat_message") or "").strip():
                out["message"] = d["chat_message"]
            return out
        return {"kind": kind}

    def show_problem(self, rest: str, message: str) -> None:
        """Put a problem of this action (its path after ``actions.<i>.``) on the field it names."""
        kind = self.chosen
        head, _, tail = rest.partition(".")
        if head == "tasks" and tail:
            j, _, name = tail.partition(".")
            rows = getattr(self, "task_index", [])
            if j.isdigit() and int(j) < len(rows):
                field = f"task{rows[int(j)]}_{name if name in ('title', 'due_in_days', 'assignee') else 'title'}"
                add_error_once(self, field, message)
                return
        field = "kind" if head in ("kind", "") else ERROR_FIELDS.get(kind, {}).get(head)
        add_error_once(self, field, message if field else f"{rest}: {message}")


def mark_optional(form: forms.Form, names: list[str]) -> None:
    """Fields the page labels "(optional)": every field is ``required=False`` (only the chosen trigger's and
    kind's are read; what is required is the validator's call), so the label says what may be left empty."""
    for name in names:
        form.fields[name].optional = True  # type: ignore[attr-defined]


def add_error_once(form: forms.Form, field: str | None, message: str) -> None:
    """One message per field: a field the form already refused (an unknown choice) keeps its own."""
    if field is not None and form.errors.get(field):
        return
    form.add_error(field, message)


def _initial(action: dict[str, Any]) -> dict[str, Any]:
    kind = action.get("kind")
    initial: dict[str, Any] = {"kind": kind}
    if kind == "open_cta":
        initial |= {
            "cta_reason": f"{action.get('type', '')}/{action.get('reason', '')}",
            "cta_title": action.get("title", ""),
            "cta_description": action.get("description", ""),
            "cta_priority": action.get("priority") or "",
            "cta_due_in_days": "" if action.get("due_in_days") is None else action["due_in_days"],
            "cta_assignee": action.get("assignee", AssigneeRule.OWNER),
            "cta_team": str(action.get("team") or ""),
        }
    elif kind == "send_email":
        initial |= {
            "email_template": str(action.get("template") or ""),
            "email_roles": action.get("roles") or [],
        }
    elif kind == "notify":
        initial |= {"notify_to": action.get("to"), "notify_user": str(action.get("user") or ""),
                    "notify_message": action.get("message", "")}  # fmt: skip
    elif kind == "set_field":
        initial |= {"set_field": action.get("field"), "set_value": action.get("value", ""),
                    "set_op": action.get("op", "add")}  # fmt: skip
    elif kind == "enrol_survey":
        initial |= {"survey": action.get("survey", "")}
    elif kind == "post_to_chat":
        initial |= {"chat_channel": str(action.get("channel") or ""), "chat_message": action.get("message", "")}
    return initial


def action_forms(organization: Any, *, data: Any = None, actions: list[dict[str, Any]] | None = None,
                 extra: int = 1) -> list[ActionForm]:  # fmt: skip
    """The action forms of the page: bound to ``data`` (as many as posted, plus ``extra``), or one per stored
    action plus ``extra`` blank ones."""
    if data is not None:
        posted = 0
        while f"a{posted}-kind" in data and posted < MAX_ACTIONS + 1:
            posted += 1
        forms_ = [ActionForm(data, prefix=f"a{i}", organization=organization) for i in range(posted)]
        return forms_ + [ActionForm(prefix=f"a{posted + i}", organization=organization) for i in range(extra)]
    stored = [a for a in (actions or []) if isinstance(a, dict)]
    every = [*stored, *[None] * extra]
    return [ActionForm(prefix=f"a{i}", organization=organization, action=a) for i, a in enumerate(every)]
