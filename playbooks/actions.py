"""What a playbook does when it fires (spec §5): its actions, their validation, execution and preview.

A playbook's ``actions`` is a list of ``{"kind": ..., ...}``:

* ``open_cta``: ``type``, ``reason`` (keys of a CTA type and one of its reasons), optional ``title``,
  ``priority`` (``high``/``medium``/``low``; omitted: computed by ``playbooks.ctas.priority_for``),
  ``due_in_days``, ``assignee`` (``owner``, ``manager``, ``round_robin`` with ``team``), ``tasks``
  (``[{"title", "due_in_days", "assignee"}]``). Opened through ``playbooks.ctas.open_or_update_cta``: an
  open CTA of the same (account, type, reason) is updated, a snoozed one suppresses the firing.
* ``notify``: ``to`` (``owner``, ``manager`` or ``user`` with ``user``: an id), ``message`` (merge fields).
* ``set_field``: ``field`` (``lifecycle_stage``, ``touch_model``, ``tags``), ``value``; for tags ``op``
  ``add``/``remove``. Saved through ``Account.save`` (which records ``account.updated``).
* ``webhook``: records the domain event ``playbook.fired``; the webhook consumer delivers it, signed, to
  every endpoint subscribed to it. No HTTP here.
* ``send_email``: ``template`` (the id of one of the organization's active
  :class:`~playbooks.models.EmailTemplate`), ``roles`` (contact roles; empty: every contact). Sent by
  :func:`playbooks.emails.send_templated_email` (merge fields, unsubscribed and departed contacts skipped,
  one-click unsubscribe, an :class:`~playbooks.models.EmailSendLog` row per contact considered), handed to
  the email backend when the firing commits: :func:`send_email`.
* ``enrol_survey``: ``survey`` (a survey's id or name), optional ``roles``: the account's contacts holding
  them (all when empty) get the survey now, within the throttle (``feedback.services.enrol_account``).
* ``post_to_chat``: ``channel`` (the id of one of the organization's enabled
  :class:`~playbooks.models.ChatChannel`), optional ``message`` (merge fields, at most 500 characters). Posts the
  account, the firing's reason, ARR, health (score and colour in words) and a link to Account 360 to the Slack or
  Teams channel (``playbooks.chat``): one :class:`~playbooks.models.ChatDelivery` per firing and action (key
  ``firing:<id>:<index>``), sent by the outbound queue after the firing commits, retried like the webhooks.

Each action returns a result ``{"kind", "status", ...}`` that the firing keeps (``PlaybookFiring.results``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import Q
from django.template import Context, Engine
from django.utils import timezone

from accounts.choices import ContactRole, TouchModel
from accounts.models import Account, Contact, Membership, Team

from . import ctas
from .choices import AssigneeRule, CtaPriority, CtaStatus, NotificationKind
from .emails import send_templated_email
from .models import ChatChannel, ChatMessageKind, Cta, CtaReason, CtaType, EmailTemplate

__all__ = ["ACTION_KINDS", "execute", "plan", "render", "send_email", "validate_actions"]

logger = logging.getLogger(__name__)

ACTION_KINDS = ("open_cta", "notify", "set_field", "webhook", "send_email", "enrol_survey", "post_to_chat")
MAX_CHAT_MESSAGE = 500
SETTABLE_FIELDS = ("lifecycle_stage", "touch_model", "tags")
MAX_ACTIONS = 20
MAX_TASKS = 20

#: Merge fields are rendered by a bare Django template engine: no template loaders, no custom tags, autoescape
#: off (plain-text email), so an admin's template reads values and nothing else.
_ENGINE = Engine(autoescape=False, libraries={}, builtins=["django.template.defaultfilters"])


# --- Validation ------------------------------------------------------------------------------------------


def _int(value: Any, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f"Expected a whole number from {low} to {high}."
    return None


def _text(value: Any, limit: int, *, required: bool = True) -> str | None:
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        return f"Expected a text of at most {limit} characters." if not required else "This field is required."
    return None


def _template(value: Any, limit: int) -> str | None:
    problem = _text(value, limit)
    if problem:
        return problem
    try:
        _ENGINE.from_string(value)
    except Exception as exc:  # noqa: BLE001  (any template syntax error is the admin's to fix)
        return f"Invalid template: {exc}"
    return None


def validate_actions(actions: Any, *, organization: Any) -> list[tuple[str, str]]:
    """Every problem of an action list, as ``(path, message)`` (``actions.0.reason``); empty when valid."""
    if not isinstance(actions, list):
        return [("actions", "Expected a list of actions.")]
    if not actions:
        return [("actions", "Add at least one action.")]
    if len(actions) > MAX_ACTIONS:
        return [("actions", f"At most {MAX_ACTIONS} actions.")]
    errors: list[tuple[str, str]] = []
    for i, action in enumerate(actions):
        path = f"actions.{i}"
        if not isinstance(action, dict):
            errors.append((path, "Expected an object with a kind."))
            continue
        kind = action.get("kind")
        if kind not in ACTION_KINDS:
            errors.append((f"{path}.kind", f"Unknown action {kind!r}; expected one of {', '.join(ACTION_KINDS)}."))
            continue
        for name, message in _CHECKS[kind](action, organization):
            errors.append((f"{path}.{name}", message))
    return errors


def _check_open_cta(action: dict[str, Any], org: Any) -> list[tuple[str, str]]:
    known = {"kind", "type", "reason", "title", "description", "priority", "due_in_days", "assignee", "team", "tasks"}
    errors = [(k, "Unknown field.") for k in action if k not in known]
    cta_type = CtaType.objects.for_org(org).filter(key=action.get("type"), is_active=True).first()
    if cta_type is None:
        errors.append(("type", "Unknown CTA type."))
    elif not CtaReason.objects.for_org(org).filter(type=cta_type, key=action.get("reason"), is_active=True).exists():
        errors.append(("reason", f"Unknown reason of the type “{cta_type.label}”."))
    for name, limit in (("title", 200), ("description", 2000)):
        if name in action and (problem := _text(action[name], limit, required=False)):
            errors.append((name, problem))
    if "priority" in action and action["priority"] not in (None, *CtaPriority.values):
        errors.append(("priority", f"Expected one of {', '.join(CtaPriority.values)} (or omit it to compute it)."))
    if "due_in_days" in action and action["due_in_days"] is not None and (p := _int(action["due_in_days"], 0, 365)):
        errors.append(("due_in_days", p))
    rule = action.get("assignee", AssigneeRule.OWNER)
    if rule not in AssigneeRule.values:
        errors.append(("assignee", f"Expected one of {', '.join(AssigneeRule.values)}."))
    errors += _check_team(action, org, rule)
    tasks = action.get("tasks", [])
    if not isinstance(tasks, list) or len(tasks) > MAX_TASKS:
        errors.append(("tasks", f"Expected a list of at most {MAX_TASKS} tasks."))
        return errors
    for j, task in enumerate(tasks):
        if not isinstance(task, dict):
            errors.append((f"tasks.{j}", "Expected an object with a title."))
            continue
        errors += [(f"tasks.{j}.{k}", "Unknown field.") for k in task if k not in ("title", "due_in_days", "assignee")]
        if problem := _text(task.get("title"), 200):
            errors.append((f"tasks.{j}.title", problem))
        if task.get("due_in_days") is not None and (problem := _int(task["due_in_days"], 0, 365)):
            errors.append((f"tasks.{j}.due_in_days", problem))
        if task.get("assignee") not in (None, *AssigneeRule.values):
            errors.append((f"tasks.{j}.assignee", f"Expected one of {', '.join(AssigneeRule.values)}."))
        elif task.get("assignee") == AssigneeRule.ROUND_ROBIN and "team" not in action:
            errors.append((f"tasks.{j}.assignee", "Round-robin needs the action's team."))
    return errors


def _check_team(action: dict[str, Any], org: Any, rule: Any) -> list[tuple[str, str]]:
    team = action.get("team")
    if team is None:
        return [("team", "Round-robin needs a team.")] if rule == AssigneeRule.ROUND_ROBIN else []
    if isinstance(team, bool) or not isinstance(team, int) or not Team.objects.for_org(org).filter(pk=team).exists():
        return [("team", "Unknown team.")]
    return []


def _check_notify(action: dict[str, Any], org: Any) -> list[tuple[str, str]]:
    errors = [(k, "Unknown field.") for k in action if k not in ("kind", "to", "user", "message")]
    to = action.get("to")
    if to not in ("owner", "manager", "user"):
        errors.append(("to", "Expected owner, manager or user."))
    elif to == "user":
        user = action.get("user")
        valid = isinstance(user, int) and not isinstance(user, bool)
        if not valid or not Membership.objects.for_org(org).filter(user_id=user).exists():
            errors.append(("user", "Expected the id of a member of this organization."))
    if problem := _template(action.get("message"), 300):
        errors.append(("message", problem))
    return errors


def _check_set_field(action: dict[str, Any], org: Any) -> list[tuple[str, str]]:
    errors = [(k, "Unknown field.") for k in action if k not in ("kind", "field", "value", "op")]
    field, value = action.get("field"), action.get("value")
    if field not in SETTABLE_FIELDS:
        return [*errors, ("field", f"Expected one of {', '.join(SETTABLE_FIELDS)}.")]
    if field == "touch_model" and value not in TouchModel.values:
        errors.append(("value", f"Expected one of {', '.join(TouchModel.values)}."))
    elif problem := _text(value, 40 if field == "lifecycle_stage" else 100):
        errors.append(("value", problem))
    if field == "tags" and action.get("op", "add") not in ("add", "remove"):
        errors.append(("op", "Expected add or remove."))
    elif field != "tags" and "op" in action:
        errors.append(("op", "Only tags take an op."))
    return errors


def _check_webhook(action: dict[str, Any], org: Any) -> list[tuple[str, str]]:
    return [(k, "Unknown field.") for k in action if k != "kind"]


def _check_email(action: dict[str, Any], org: Any) -> list[tuple[str, str]]:
    errors = [(k, "Unknown field.") for k in action if k not in ("kind", "template", "roles")]
    roles = action.get("roles", [])
    if not isinstance(roles, list) or any(r not in ContactRole.values for r in roles):
        errors.append(("roles", f"Expected a list of {', '.join(ContactRole.values)} (empty: every contact)."))
    template_id = action.get("template")
    if isinstance(template_id, bool) or not isinstance(template_id, int):
        errors.append(("template", "Expected the id of one of this organization's email templates."))
        return errors
    template = EmailTemplate.objects.for_org(org).filter(pk=template_id).first()
    if template is None:
        errors.append(("template", "Unknown email template."))
    elif not template.is_active:
        errors.append(("template", f"The email template “{template.name}” is inactive; reactivate it first."))
    return errors


def _check_survey(action: dict[str, Any], org: Any) -> list[tuple[str, str]]:
    from feedback.services import find_survey

    errors = [(k, "Unknown field.") for k in action if k not in ("kind", "survey", "roles")]
    survey = action.get("survey")
    if isinstance(survey, str) and (problem := _text(survey, 120, required=True)):
        errors.append(("survey", problem))
    elif not isinstance(survey, (int, str)) or isinstance(survey, bool):
        errors.append(("survey", "A survey's id or name is required."))
    elif org is not None and find_survey(getattr(org, "pk", org), survey) is None:
        errors.append(("survey", f"No survey {survey!r} in this organization."))
    roles = action.get("roles", [])
    if not isinstance(roles, list) or any(r not in ContactRole.values for r in roles):
        errors.append(("roles", f"Expected a list of {', '.join(ContactRole.values)} (empty: every contact)."))
    return errors


def _check_chat(action: dict[str, Any], org: Any) -> list[tuple[str, str]]:
    errors = [(k, "Unknown field.") for k in action if k not in ("kind", "channel", "message")]
    if "message" in action and action["message"] not in (None, ""):
        if problem := _template(action["message"], MAX_CHAT_MESSAGE):
            errors.append(("message", problem))
    channel_id = action.get("channel")
    if isinstance(channel_id, bool) or not isinstance(channel_id, int):
        errors.append(("channel", "Expected the id of one of this organization's chat channels."))
        return errors
    channel = ChatChannel.objects.for_org(org).filter(pk=channel_id).first()
    if channel is None:
        errors.append(("channel", "Unknown chat channel."))
    elif not channel.is_active:
        errors.append(("channel", f"The chat channel “{channel.name}” is disabled; enable it first."))
    return errors


_CHECKS = {
    "open_cta": _check_open_cta,
    "notify": _check_notify,
    "set_field": _check_set_field,
    "webhook": _check_webhook,
    "send_email": _check_email,
    "enrol_survey": _check_survey,
    "post_to_chat": _check_chat,
}


# --- Execution ---------------------------------------------------------------------------------------------


def render(template: str, context: dict[str, Any]) -> str:
    """A merge-field template (``{{ account.name }}``, ``{{ contact.name }}``, ``{{ csm.first_name }}``)."""
    return _ENGINE.from_string(template).render(Context(context))


def _merge_context(playbook: Any, account: Account) -> dict[str, Any]:
    return {"account": account, "csm": account.owner, "playbook": playbook}


def execute(playbook: Any, account: Account, action: dict[str, Any], *, firing: Any) -> dict[str, Any]:
    """Run one action for ``account``; returns its result. Runs inside the firing's transaction."""
    kind = action["kind"]
    return _RUN[kind](playbook, account, action, firing)


def _open_cta(playbook: Any, account: Account, action: dict[str, Any], firing: Any) -> dict[str, Any]:
    from .triggers import TRIGGERS

    team = Team.objects.for_org(account.organization_id).filter(pk=action["team"]).first() if "team" in action else None
    try:
        cta, outcome = ctas.open_or_update_cta(
            account=account,
            type=action["type"],
            reason=action["reason"],
            title=action.get("title", ""),
            description=action.get("description", ""),
            assignee_rule=action.get("assignee", AssigneeRule.OWNER),
            team=team,
            priority=action.get("priority"),
            due_in_days=action.get("due_in_days"),
            tasks=[
                ctas.TaskTemplate(t["title"], t.get("due_in_days"), t.get("assignee")) for t in action.get("tasks", [])
            ],
            source="playbook",
            source_ref=playbook.source_ref,
            condition_key=TRIGGERS[playbook.trigger].condition_key(playbook.pk),
        )
    except ctas.InactiveCta as inactive:
        return {"kind": "open_cta", "status": "skipped", "detail": inactive.messages[0]}
    firing.cta = cta
    return {"kind": "open_cta", "status": outcome, "cta": cta.pk}


def _manager_of(account: Account) -> Any:
    return ctas.resolve_assignee(account, AssigneeRule.MANAGER)


def _notify(playbook: Any, account: Account, action: dict[str, Any], firing: Any) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    to = action["to"]
    if to == "owner":
        user = ctas.resolve_assignee(account, AssigneeRule.OWNER)
    elif to == "manager":
        user = _manager_of(account)
    else:
        user = get_user_model().objects.filter(pk=action["user"]).first()
    if user is None:
        return {"kind": "notify", "status": "skipped", "detail": "nobody to notify"}
    message = render(action["message"], _merge_context(playbook, account))[:300]
    ctas.notify(
        user, organization=account.organization_id, message=message, cta=firing.cta, kind=NotificationKind.PLAYBOOK
    )
    return {"kind": "notify", "status": "done", "user": user.pk}


def _set_field(playbook: Any, account: Account, action: dict[str, Any], firing: Any) -> dict[str, Any]:
    field, value = action["field"], action["value"]
    if field == "tags":
        tags = list(account.tags or [])
        changed = value not in tags if action.get("op", "add") == "add" else value in tags
        tags = [*tags, value] if action.get("op", "add") == "add" else [t for t in tags if t != value]
    else:
        changed = getattr(account, field) != value
    if not changed:
        return {"kind": "set_field", "status": "unchanged", "field": field}
    if field == "tags":
        account.tags = tags
    else:
        setattr(account, field, value)
    # Account.save records account.updated in the outbox, like an edit through the API.
    account.save(update_fields=[field, "updated_at"])
    return {"kind": "set_field", "status": "done", "field": field, "value": value}


def _webhook(playbook: Any, account: Account, action: dict[str, Any], firing: Any) -> dict[str, Any]:
    from cs_platform.events import record_event

    event = record_event(
        account.organization_id,
        "playbook.fired",
        playbook.pk,
        {
            "playbook": playbook.pk,
            "playbook_name": playbook.name,
            "trigger": playbook.trigger,
            "account": account.pk,
            "account_external_id": account.external_id,
            "account_name": account.name,
            "occurrence_key": firing.occurrence_key,
            "cta": firing.cta_id,
            "fired_at": firing.fired_at,
        },
    )
    return {"kind": "webhook", "status": "done", "event": str(event.pk)}


def send_email(playbook: Any, account: Account, params: dict[str, Any]) -> dict[str, Any]:
    """Send the email template ``params["template"]`` to ``account``'s contacts holding one of
    ``params["roles"]`` (empty: every contact) with :func:`playbooks.emails.send_templated_email`.

    The send log is written in the firing's transaction and the messages are handed to Django's email
    backend (console in the demo, SMTP in production) once it commits, so a rolled-back firing sends
    nothing. A template deleted or deactivated since the playbook was saved sends nothing (``skipped``).
    Returns ``{"kind", "status", "template", "sent", "skipped": {reason: count}}``.
    """
    template = EmailTemplate.objects.for_org(account.organization_id).filter(pk=params.get("template")).first()
    result: dict[str, Any] = {"kind": "send_email", "template": params.get("template"), "sent": 0, "skipped": {}}
    if template is None or not template.is_active:
        detail = "the email template was deleted" if template is None else "the email template is inactive"
        return {**result, "status": "skipped", "detail": detail}
    sent = send_templated_email(template, account, params.get("roles") or [], on_commit=True)
    status = "done" if sent.sent else "skipped"
    return {**result, "status": status, "sent": sent.sent, "skipped": sent.skipped or {}}


def _send_email(playbook: Any, account: Account, action: dict[str, Any], firing: Any) -> dict[str, Any]:
    return send_email(playbook, account, action)


def _enrol_survey(playbook: Any, account: Account, action: dict[str, Any], firing: Any) -> dict[str, Any]:
    from feedback.services import enrol_account, find_survey

    survey = find_survey(account.organization_id, action.get("survey"))
    if survey is None or not survey.active:
        return {"kind": "enrol_survey", "status": "skipped", "detail": "the survey is missing or inactive"}
    result = enrol_account(survey, account, action.get("roles") or [], source=f"playbook:{playbook.pk}")
    return {"kind": "enrol_survey", "status": "done", "survey": survey.pk, "invited": result.invited,
            "skipped": result.skipped}  # fmt: skip


def _post_to_chat(playbook: Any, account: Account, action: dict[str, Any], firing: Any) -> dict[str, Any]:
    from . import chat

    channel = ChatChannel.objects.for_org(account.organization_id).filter(pk=action.get("channel")).first()
    if channel is None or not channel.is_active:
        detail = "the chat channel was deleted" if channel is None else "the chat channel is disabled"
        return {"kind": "post_to_chat", "status": "skipped", "detail": detail}
    text = ""
    if action.get("message"):  # plain text: the chat builder escapes what its format needs
        context = Context(_merge_context(playbook, account), autoescape=False)
        text = _ENGINE.from_string(action["message"]).render(context)[:MAX_CHAT_MESSAGE]
    facts = chat.account_facts(account, firing.reason or playbook.name)
    payload = chat.account_message(channel.kind, title=f"Playbook: {playbook.name}", facts=facts, text=text)
    # One message per firing and action: the firing is claimed once, and its key is unique per channel.
    key = f"firing:{firing.pk}:{len(firing.results)}"
    delivery = chat.post(channel, ChatMessageKind.PLAYBOOK, key, payload, account=account)
    if delivery is None:
        return {"kind": "post_to_chat", "status": "skipped", "detail": "already posted", "channel": channel.pk}
    return {"kind": "post_to_chat", "status": "done", "channel": channel.pk, "delivery": delivery.pk}


_RUN = {
    "open_cta": _open_cta,
    "notify": _notify,
    "set_field": _set_field,
    "webhook": _webhook,
    "send_email": _send_email,
    "enrol_survey": _enrol_survey,
    "post_to_chat": _post_to_chat,
}


# --- Preview -------------------------------------------------------------------------------------------------


def plan(organization: Any, actions: list[dict[str, Any]], account_ids: list[int]) -> dict[str, Any]:
    """What ``actions`` would do for ``account_ids``, without doing it: CTAs to open, to update, suppressed
    (an open CTA snoozed), emails (recipients), field changes, notifications, webhook events. A few
    queries per action, whatever the number of accounts."""
    today = timezone.localdate()
    out = {"ctas_to_open": 0, "ctas_to_update": 0, "ctas_suppressed": 0, "emails": 0, "field_changes": 0}
    out |= {"notifications": 0, "webhook_events": 0, "survey_enrolments": 0, "chat_posts": 0}
    accounts = Account.objects.for_org(organization).filter(pk__in=account_ids)
    for action in actions:
        kind = action.get("kind")
        if kind == "open_cta":
            open_ctas = dict(
                Cta.objects.for_org(organization)
                .filter(
                    account_id__in=account_ids,
                    type__key=action["type"],
                    reason__key=action["reason"],
                    status=CtaStatus.OPEN,
                )
                .values_list("account_id", "snoozed_until")
            )
            snoozed = sum(1 for until in open_ctas.values() if until is not None and until > today)
            out["ctas_suppressed"] += snoozed
            out["ctas_to_update"] += len(open_ctas) - snoozed
            out["ctas_to_open"] += len(account_ids) - len(open_ctas)
        elif kind == "send_email":
            out["emails"] += _eligible_contacts(organization, action, account_ids)
        elif kind == "set_field":
            field, value = action["field"], action["value"]
            if field == "tags":
                has = accounts.filter(tags__contains=[value]) if _json_contains() else None
                having = (
                    has.count()
                    if has is not None
                    else sum(1 for t in accounts.values_list("tags", flat=True) if value in (t or []))
                )
                out["field_changes"] += (len(account_ids) - having) if action.get("op", "add") == "add" else having
            else:
                out["field_changes"] += accounts.exclude(**{field: value}).count()
        elif kind == "notify":
            out["notifications"] += len(account_ids)
        elif kind == "webhook":
            out["webhook_events"] += len(account_ids)
        elif kind == "post_to_chat":
            out["chat_posts"] += len(account_ids)
        elif kind == "enrol_survey":
            contacts = Contact.objects.for_org(organization).filter(
                account_id__in=account_ids, is_active=True, departed_at__isnull=True, unsubscribed=False
            )
            roles = set(action.get("roles") or [])
            rows = contacts.exclude(email="").values_list("roles", flat=True)
            # Before the throttle: contacts surveyed in the last 90 days are skipped when it runs.
            out["survey_enrolments"] += sum(1 for r in rows if not roles or set(r or []) & roles)
    return out


def _eligible_contacts(organization: Any, action: dict[str, Any], account_ids: list[int]) -> int:
    """How many messages a ``send_email`` action would send to ``account_ids``: the contacts that
    :func:`playbooks.emails.send_templated_email` would not skip (active, not departed, not unsubscribed,
    with an address, holding one of the roles); none when the template is missing or inactive."""
    if not EmailTemplate.objects.for_org(organization).filter(pk=action.get("template"), is_active=True).exists():
        return 0
    today = timezone.localdate()
    contacts = (
        Contact.objects.for_org(organization)
        .filter(account_id__in=account_ids, is_active=True, unsubscribed=False)
        .filter(Q(departed_at__isnull=True) | Q(departed_at__gt=today))
        .exclude(email="")
    )
    roles = set(action.get("roles") or [])
    return sum(1 for r in contacts.values_list("roles", flat=True) if not roles or set(r or []) & roles)


def _json_contains() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"
