"""Slack and Microsoft Teams channels through incoming webhooks (issue 21 item 6; docs/chat.md).

* **Channels.** :class:`~playbooks.models.ChatChannel`: an admin registers a channel's incoming-webhook URL
  (:func:`create_channel`, :func:`update_channel`, :func:`delete_channel`, each audit-logged without the URL).
  The URL is a secret: encrypted at rest, write-only in the API, never logged (the outbound guard logs a
  refused call's host only), shown as :func:`url_hint` (host and last four characters).
* **Messages.** :func:`account_message` builds the post of a playbook firing: the account, the reason, ARR,
  the health score with its colour *in words*, and a link to Account 360 (absolute, from
  ``PUBLIC_BASE_URL``). Slack: Block Kit built with ``slack_sdk.models.blocks`` and serialised with
  ``to_dict()`` (plus ``text``, the notification fallback). Teams: the Workflows webhook's message with one
  Adaptive Card attachment (:func:`teams_card`). :func:`digest_message`: the organization's daily digest.
* **Notifications.** A channel subscribed to notification kinds (``ChatChannel.notification_kinds``) also
  gets the in-app notifications of those kinds (:func:`queue_notifications` after the notification's commit,
  then :func:`post_notifications` in the task :data:`NOTIFY_TASK`): :func:`notification_message` — who it is
  for, what happened, and the account's facts (reason, ARR, health, link) — once per channel and
  notification (idempotency key ``notification:<id>``), delivered like every chat message.
* **Delivery.** :func:`post` stores one :class:`~playbooks.models.ChatDelivery` per (channel, idempotency key)
  and queues :data:`DELIVER_TASK` after the commit; :func:`attempt_chat_delivery` posts the stored JSON body
  **through** :func:`cs_platform.outbound.request` (slack-sdk builds the message but never sends it: its
  ``WebhookClient`` would open its own connection, past the guard), logs each try as a
  :class:`~playbooks.models.ChatAttempt` and retries on the webhooks' schedule
  (:data:`playbooks.services.RETRY_DELAYS`), with the same stale-message and slot rules.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.urls import reverse
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from accounts.models import Account, Organization
from cs_platform import outbound
from cs_platform.audit import record_audit
from cs_platform.celery import app as celery_app

from .choices import NotificationKind
from .digest import build_digest, local_now
from .models import (
    ChatAttempt,
    ChatChannel,
    ChatDelivery,
    ChatKind,
    ChatMessageKind,
    Notification,
)
from .services import Scheduler, lock_for_try, reserve_test_send, send_and_record

__all__ = [
    "DELIVER_TASK",
    "account_message",
    "attempt_chat_delivery",
    "create_channel",
    "delete_channel",
    "digest_message",
    "notification_message",
    "post",
    "post_notifications",
    "queue_notifications",
    "send_channel_digests",
    "send_chat_digests",
    "send_test",
    "teams_card",
    "update_channel",
    "url_hint",
    "validate_chat_url",
]

DELIVER_TASK = "playbooks.tasks.deliver_chat"
NOTIFY_TASK = "playbooks.tasks.post_notifications_to_chat"
NOTIFY_BATCH = 500  # notification ids per NOTIFY_TASK message (a bulk opening makes thousands)
USER_AGENT = "Retain-Chat/1"
#: The Adaptive Card version Teams' Workflows webhook renders (docs/chat.md).
ADAPTIVE_CARD_VERSION = "1.4"
COLOR_WORDS = {"green": "Green", "yellow": "Yellow", "red": "Red"}
COLOR_SIGNS = {"green": "●", "yellow": "▲", "red": "◆"}  # the shapes of the health pill: not colour only
LISTED = 10  # tasks listed in a channel's digest


# --- Channels ----------------------------------------------------------------------------------------------


def validate_chat_url(url: str) -> str:
    """An incoming-webhook URL the outbound guard accepts (absolute http/https, no credentials, not a refused
    address). Checked again at every post, which is the check that counts."""
    url = (url or "").strip()
    if not url:
        raise ValidationError("This field is required.")
    try:
        outbound.check_url(url)
    except outbound.OutboundRefused as exc:
        raise ValidationError(exc.reason) from None
    return url


def url_hint(url: str) -> str:
    """``hooks.slack.com …x9Qz``: enough to recognise the URL, never enough to use it."""
    host = outbound.host_of(url) or "?"
    return f"{host} …{url[-4:]}" if len(url) > 8 else host


_FIELDS = ("name", "kind", "is_active", "daily_digest", "notification_kinds")


def _state(channel: ChatChannel) -> dict[str, Any]:
    return {f: getattr(channel, f) for f in _FIELDS} | {"url_hint": channel.url_hint}


def _audit(channel: ChatChannel, action: str, actor: Any, changes: list[dict[str, Any]]) -> None:
    record_audit(
        channel.organization_id, action, subject_type="chat_channel", subject_id=channel.pk,
        subject_label=channel.name, actor=actor, changes=changes,
    )  # fmt: skip


def create_channel(organization: Any, *, actor: Any = None, webhook_url: str, **fields: Any) -> ChatChannel:
    """A new channel (admins' call), audit-logged; the URL is validated, stored encrypted, never audited."""
    url = validate_chat_url(webhook_url)
    with transaction.atomic():
        channel = ChatChannel.all_orgs.create(
            organization_id=getattr(organization, "pk", organization), webhook_url=url, url_hint=url_hint(url),
            created_by=actor if getattr(actor, "pk", None) else None, **fields,
        )  # fmt: skip
        _audit(channel, "chat_channel.created", actor, [{"field": k, "after": v} for k, v in _state(channel).items()])
    return channel


def update_channel(
    channel: ChatChannel, *, actor: Any = None, webhook_url: str | None = None, **fields: Any
) -> ChatChannel:
    """Change a channel; a new URL replaces the old one (the audit entry says "replaced", never the URL)."""
    before = _state(channel)
    for name, value in fields.items():
        setattr(channel, name, value)
    if webhook_url is not None:
        url = validate_chat_url(webhook_url)
        channel.webhook_url, channel.url_hint = url, url_hint(url)
    with transaction.atomic():
        channel.save()
        after = _state(channel)
        changes = [{"field": k, "before": before[k], "after": after[k]} for k in after if before[k] != after[k]]
        if webhook_url is not None:
            changes.append({"field": "webhook_url", "before": "(secret)", "after": "(replaced)"})
        if changes:
            _audit(channel, "chat_channel.updated", actor, changes)
    return channel


def delete_channel(channel: ChatChannel, *, actor: Any = None) -> None:
    with transaction.atomic():
        _audit(channel, "chat_channel.deleted", actor, [{"field": k, "before": v} for k, v in _state(channel).items()])
        channel.delete()


# --- Messages ----------------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (``&``, ``<``, ``>``) escaped, as Slack's formatting guide requires."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _money(amount: Any, currency: str) -> str:
    symbols = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "CAD": "CA$", "AUD": "A$"}
    value = Decimal(amount or 0)
    code = (currency or "USD").upper()
    return f"{'−' if value < 0 else ''}{symbols.get(code, code + ' ')}{abs(value):,.0f}"


def account_facts(account: Account, reason: str) -> dict[str, str]:
    """What a playbook post says about ``account``: name, reason, ARR, health (score and colour in words, with
    the pill's shape) and the absolute link to Account 360."""
    from health.models import HealthScore

    org = Organization.objects.only("slug", "currency").get(pk=account.organization_id)
    health = HealthScore.objects.for_org(account.organization_id).filter(account=account).first()
    if health is None or not health.color:
        health_text = "Not scored yet"
    else:
        color = health.color
        score = f"{health.score:.0f}" if health.score is not None else "—"
        health_text = f"{COLOR_SIGNS.get(color, '')} {COLOR_WORDS.get(color, color)} ({score}/100)".strip()
    path = reverse("account-detail", args=[org.slug, account.pk])
    return {
        "account": account.name,
        "reason": reason,
        "arr": _money(account.arr, org.currency),
        "health": health_text,
        "url": settings.PUBLIC_BASE_URL + path,
    }


def slack_blocks(title: str, facts: dict[str, str], text: str = "") -> list[dict[str, Any]]:
    """Block Kit: a header, the optional message, the facts as section fields, and a button to Account 360."""
    blocks: list[Any] = [HeaderBlock(text=title[:150])]
    if text:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_escape(text)[:3000])))
    blocks.append(
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Account*\n{_escape(facts['account'])}"),
                MarkdownTextObject(text=f"*ARR*\n{_escape(facts['arr'])}"),
                MarkdownTextObject(text=f"*Health*\n{_escape(facts['health'])}"),
                MarkdownTextObject(text=f"*Reason*\n{_escape(facts['reason'])[:1900]}"),
            ]
        )
    )
    blocks.append(
        ActionsBlock(elements=[ButtonElement(text="Open in Retain", url=facts["url"], action_id="open_account_360")])
    )
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"<{facts['url']}|Account 360> · Retain")]))
    return [b.to_dict() for b in blocks]


def teams_card(title: str, body: list[dict[str, Any]], url: str, link_title: str) -> dict[str, Any]:
    """The Workflows webhook's message: ``{"type": "message", "attachments": [one Adaptive Card]}``."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": ADAPTIVE_CARD_VERSION,
                    "body": [{"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True},
                             *body],
                    "actions": [{"type": "Action.OpenUrl", "title": link_title, "url": url}],
                },
            }
        ],
    }  # fmt: skip


def account_message(kind: str, *, title: str, facts: dict[str, str], text: str = "") -> dict[str, Any]:
    """The JSON body of a playbook post for a channel of ``kind``."""
    if kind == ChatKind.SLACK:
        fallback = f"{title}: {facts['account']} — {facts['reason']} (ARR {facts['arr']}, health {facts['health']})"
        return {"text": fallback[:3000], "blocks": slack_blocks(title, facts, text)}
    body: list[dict[str, Any]] = []
    if text:
        body.append({"type": "TextBlock", "text": text, "wrap": True})
    body.append(
        {
            "type": "FactSet",
            "facts": [
                {"title": "Account", "value": facts["account"]},
                {"title": "Reason", "value": facts["reason"]},
                {"title": "ARR", "value": facts["arr"]},
                {"title": "Health", "value": facts["health"]},
            ],
        }
    )
    return teams_card(title, body, facts["url"], "Open Account 360 in Retain")


def digest_message(kind: str, organization: Organization, digest: Any, day: dt.date) -> dict[str, Any]:
    """The channel's daily digest: the organization's open tasks due that day and overdue
    (:func:`playbooks.digest.build_digest` for the whole organization), with a link to the work queue."""
    counts = digest.counts
    title = f"{organization.name}: daily digest, {day:%d %b %Y}"
    summary = f"{counts['tasks_due']} task(s) due today, {counts['tasks_overdue']} overdue."
    lines = []
    for label, tasks in (("Overdue", digest.overdue), ("Due today", digest.due_today)):
        for task in tasks[:LISTED]:
            who = task.assignee.get_full_name() or task.assignee.email if task.assignee_id else "unassigned"
            lines.append(f"{label}: {task.cta.account.name} — {task.title} ({who}, due {task.due_date:%d %b})")
    url = settings.PUBLIC_BASE_URL + reverse("work", args=[organization.slug])
    if kind == ChatKind.SLACK:
        blocks: list[Any] = [HeaderBlock(text=title[:150]), SectionBlock(text=MarkdownTextObject(text=summary))]
        if lines:
            blocks.append(SectionBlock(text=MarkdownTextObject(text=_escape("\n".join(lines))[:3000])))
        blocks.append(
            ActionsBlock(elements=[ButtonElement(text="Open the work queue", url=url, action_id="open_work")])
        )
        return {"text": f"{title}: {summary}", "blocks": [b.to_dict() for b in blocks]}
    body = [{"type": "TextBlock", "text": summary, "wrap": True}]
    body += [{"type": "TextBlock", "text": line, "wrap": True, "spacing": "None"} for line in lines]
    return teams_card(title, body, url, "Open the work queue in Retain")


def test_message(kind: str, channel: ChatChannel) -> dict[str, Any]:
    text = f"This is a test message from Retain to the channel “{channel.name}”."
    if kind == ChatKind.SLACK:
        return {"text": text, "blocks": [SectionBlock(text=MarkdownTextObject(text=_escape(text))).to_dict()]}
    return teams_card("Retain test message", [{"type": "TextBlock", "text": text, "wrap": True}],
                      settings.PUBLIC_BASE_URL + "/", "Open Retain")  # fmt: skip


def notification_message(kind: str, notification: Notification) -> dict[str, Any]:
    """The post of an in-app notification to a channel of ``kind``: the title says what kind and for whom; with
    a CTA, the account's facts (account, reason — the notification's text, ARR, health, link to Account 360)
    as a playbook post has them; without one (a feature request), the text and a link to what it is about."""
    who = notification.user.get_full_name() or notification.user.email
    label = NotificationKind(notification.kind).label if notification.kind in NotificationKind.values else "Other"
    title = f"{label} — for {who}"[:150]
    cta = notification.cta
    if cta is not None:
        facts = account_facts(cta.account, notification.message)
        return account_message(kind, title=title, facts=facts)
    url = settings.PUBLIC_BASE_URL + (notification.url or "/")
    if kind == ChatKind.SLACK:
        blocks: list[Any] = [
            HeaderBlock(text=title),
            SectionBlock(text=MarkdownTextObject(text=_escape(notification.message)[:3000])),
            ActionsBlock(elements=[ButtonElement(text="Open in Retain", url=url, action_id="open_notification")]),
        ]
        return {"text": f"{title}: {notification.message}"[:3000], "blocks": [b.to_dict() for b in blocks]}
    return teams_card(title, [{"type": "TextBlock", "text": notification.message, "wrap": True}], url, "Open in Retain")


def queue_notifications(organization_id: int, notification_ids: list[int]) -> None:
    """Once the current transaction commits, hand the new notifications to :data:`NOTIFY_TASK` (which posts
    them to the channels subscribed to their kinds). No query here: the task finds the channels, so creating
    a notification costs nothing more for an organization without subscribed channels."""
    ids = [pk for pk in notification_ids if pk is not None]
    if not ids:
        return

    def send() -> None:
        task = celery_app.tasks[NOTIFY_TASK]  # registered by PlaybooksConfig.ready (playbooks.tasks)
        for start in range(0, len(ids), NOTIFY_BATCH):
            task.apply_async((organization_id, ids[start : start + NOTIFY_BATCH]))

    transaction.on_commit(send)


def post_notifications(organization_id: int, notification_ids: list[int]) -> int:
    """Post each notification to every enabled channel of its organization subscribed to its kind, once per
    channel and notification (``notification:<id>``: a redelivered task posts nothing twice). Ids of another
    organization match nothing. Returns how many deliveries were queued."""
    channels = [
        c for c in ChatChannel.objects.for_org(organization_id).filter(is_active=True).order_by("pk")
        if c.notification_kinds
    ]  # fmt: skip
    if not channels:
        return 0
    wanted = {kind for c in channels for kind in c.notification_kinds}
    notifications = (
        Notification.objects.for_org(organization_id)
        .filter(pk__in=list(notification_ids), kind__in=sorted(wanted))
        .select_related("user", "cta__account")
        .order_by("pk")
    )
    queued = 0
    with transaction.atomic():
        for notification in notifications:
            bodies: dict[str, dict[str, Any]] = {}  # one body per chat app (Slack, Teams)
            account = notification.cta.account if notification.cta_id else None
            key = f"notification:{notification.pk}"
            for channel in channels:
                if notification.kind not in channel.notification_kinds:
                    continue
                if channel.kind not in bodies:
                    bodies[channel.kind] = notification_message(channel.kind, notification)
                if post(channel, ChatMessageKind.NOTIFICATION, key, bodies[channel.kind], account=account):
                    queued += 1
    return queued


# --- Delivery ----------------------------------------------------------------------------------------------


def post(
    channel: ChatChannel, message_kind: str, idempotency_key: str, payload: dict[str, Any], *, account: Any = None
) -> ChatDelivery | None:
    """Store the message for ``channel`` under ``idempotency_key`` and queue its first try once the current
    transaction commits. Returns the new delivery, or ``None`` when one with that key exists (a redelivered
    task, a re-run): nothing is posted twice."""
    body = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    try:
        with transaction.atomic():
            delivery = ChatDelivery.all_orgs.create(
                organization_id=channel.organization_id, channel=channel, message_kind=message_kind,
                idempotency_key=idempotency_key[:120], payload=body, account=account,
            )  # fmt: skip
    except IntegrityError:
        return None
    org_id, pk = channel.organization_id, delivery.pk
    transaction.on_commit(lambda: enqueue_try(org_id, pk, 1, 0))
    return delivery


def enqueue_try(organization_id: int, delivery_id: int, attempt: int, countdown: float) -> None:
    task = celery_app.tasks[DELIVER_TASK]  # registered by PlaybooksConfig.ready (playbooks.tasks)
    if countdown:
        task.apply_async((organization_id, delivery_id), {"attempt": attempt}, countdown=countdown)
    else:
        task.apply_async((organization_id, delivery_id), {"attempt": attempt})


def send_test(channel: ChatChannel, *, user: Any = None) -> ChatDelivery:
    """Queue a test message to the channel (enabled or not), within the webhooks' ``WEBHOOK_TEST_RATE``
    budget of the organization (raises :class:`playbooks.services.SendTestThrottled`)."""
    reserve_test_send(channel.organization_id)
    delivery = post(channel, ChatMessageKind.TEST, f"test:{uuid.uuid4()}", test_message(channel.kind, channel))
    assert delivery is not None  # a fresh key
    return delivery


def attempt_chat_delivery(
    organization_id: int, delivery_id: int, *, attempt: int = 1, schedule: Scheduler | None = None
) -> ChatDelivery | None:
    """Make try ``attempt`` of a chat delivery: post, log, then finish or schedule the next try — the webhooks'
    skeleton (:func:`playbooks.services.lock_for_try` and :func:`~playbooks.services.send_and_record`: a stale
    or repeated message does nothing; a busy organization's try comes back later without counting). A
    disabled channel gets nothing but tests."""
    schedule = schedule or enqueue_try
    with transaction.atomic():
        delivery = lock_for_try(ChatDelivery, organization_id, delivery_id, attempt, "channel")
        if delivery is None:
            return None
        channel = delivery.channel
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT}
        active = channel.is_active or delivery.message_kind == ChatMessageKind.TEST
        sent = send_and_record(
            organization_id, delivery, attempt, url=channel.webhook_url, body=body, headers=headers, send=active,
            not_sent="Channel disabled; not sent.", may_retry=active, attempt_model=ChatAttempt, schedule=schedule,
        )  # fmt: skip
        if not sent:
            return None
    return delivery


def send_channel_digests(organization: Organization, *, day: dt.date) -> int:
    """Post the day's digest to every enabled channel of the organization that opted in, once per channel and
    day (idempotency key ``digest:<day>``). Nothing is posted when no task is due or overdue. Returns how
    many digests were queued."""
    channels = list(ChatChannel.objects.for_org(organization).filter(is_active=True, daily_digest=True))
    if not channels:
        return 0
    digest = build_digest(organization, None, day=day, since=None)
    if not (digest.counts["tasks_due"] or digest.counts["tasks_overdue"]):
        return 0
    queued = 0
    for channel in channels:
        if post(channel, ChatMessageKind.DIGEST, f"digest:{day.isoformat()}",
                digest_message(channel.kind, organization, digest, day)) is not None:  # fmt: skip
            queued += 1
    return queued


def send_chat_digests(organization_id: int, *, now: dt.datetime | None = None, force: bool = False) -> int:
    """The beat's work for one organization's channels: from ``DIGEST_HOUR`` in the organization's time zone
    (``force``: whatever the hour), the local day's digest to each opted-in channel (:func:`send_channel_digests`)."""
    organization = Organization.objects.get(pk=organization_id)
    local = local_now(organization, now)
    if not force and local.hour < settings.DIGEST_HOUR:
        return 0
    return send_channel_digests(organization, day=local.date())
