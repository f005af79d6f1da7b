"""Models of the chat channels (issue 21 item 6): Slack and Microsoft Teams incoming webhooks.

A :class:`ChatChannel` is one incoming-webhook URL of an organization (a Slack channel's "Incoming
Webhook", or a Teams channel's Workflows webhook). Its URL is a secret (whoever holds it can post into
the channel): it is stored encrypted at rest (Fernet, django-fernet-encrypted-fields, key derived from
``SECRET_KEY`` and ``SALT_KEY``), never returned by the API (write-only; ``url_hint`` shows the host and
the last four characters) and never logged.

Every message is one :class:`ChatDelivery` (a playbook firing's post, the daily digest, a test), unique per
channel and idempotency key, sent by the same retry machinery as the outbound webhooks
(``playbooks.services.RETRY_DELAYS``), each HTTP try logged as a :class:`ChatAttempt`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from encrypted_fields.fields import EncryptedTextField

from cs_platform.tenancy import OrgScopedModel

from .choices import SUBSCRIBABLE_NOTIFICATION_KINDS

__all__ = ["ChatAttempt", "ChatChannel", "ChatDelivery", "ChatKind", "ChatMessageKind"]


class ChatKind(models.TextChoices):
    SLACK = "slack", "Slack"
    TEAMS = "teams", "Microsoft Teams"


class ChatMessageKind(models.TextChoices):
    PLAYBOOK = "playbook", "Playbook post"
    DIGEST = "digest", "Daily digest"
    TEST = "test", "Test message"
    NOTIFICATION = "notification", "Notification"


#: The values of :class:`playbooks.models.DeliveryStatus` (models.py imports this module: not imported back).
_STATUS = [("pending", "Pending"), ("retrying", "Retrying"), ("succeeded", "Succeeded"), ("failed", "Failed")]


class ChatChannel(OrgScopedModel):
    """A Slack or Teams channel reached through its incoming-webhook URL (encrypted at rest, write-only).

    ``daily_digest``: the channel receives the organization's daily digest. Playbooks post to it through
    their ``post_to_chat`` action, which names the channel. ``notification_kinds``: the in-app notifications
    of those kinds (:class:`~playbooks.choices.NotificationKind`, any member's) are posted to it too. A
    disabled channel receives nothing."""

    kind = models.CharField(max_length=8, choices=ChatKind.choices)
    name = models.CharField(max_length=120)
    webhook_url = EncryptedTextField(help_text="The incoming-webhook URL, Fernet-encrypted at rest; never returned")
    url_hint = models.CharField(max_length=300, blank=True, help_text="Host and the URL's last 4 characters")
    is_active = models.BooleanField(default=True)
    daily_digest = models.BooleanField(default=False)
    notification_kinds = models.JSONField(
        default=list,
        blank=True,
        help_text="The in-app notification kinds also posted to this channel: a list of NotificationKind values "
        "(validated by the API and the form; playbooks.choices.SUBSCRIBABLE_NOTIFICATION_KINDS)",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="playbooks_chat_unique_name")]
        indexes = [models.Index(fields=["organization", "is_active"], name="playbooks_chat_org_active")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.name}"

    @property
    def notification_kind_labels(self) -> list[str]:
        """The subscribed notification kinds in words (the admin page's "Receives")."""
        labels = dict(SUBSCRIBABLE_NOTIFICATION_KINDS)
        return [labels.get(kind, kind) for kind in self.notification_kinds or []]


class ChatDelivery(OrgScopedModel):
    """One message to one channel: the body as sent (never the URL), its status and retry schedule.

    ``idempotency_key`` names what the message is for (``firing:<id>:<action index>``, ``digest:<day>``,
    ``notification:<id>``, ``test:<uuid>``); at most one delivery exists per channel and key, so a redelivered
    task or a re-run never posts twice."""

    channel = models.ForeignKey(ChatChannel, on_delete=models.CASCADE, related_name="deliveries")
    message_kind = models.CharField(max_length=12, choices=ChatMessageKind.choices)
    idempotency_key = models.CharField(max_length=120)
    payload = models.JSONField(default=dict, help_text="The JSON body posted (Slack blocks or a Teams card)")
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=_STATUS, default="pending")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        verbose_name_plural = "chat deliveries"
        indexes = [models.Index(fields=["organization", "channel", "-created_at"], name="playbooks_chatdel_channel")]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "channel", "idempotency_key"], name="playbooks_chatdel_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_kind} → {self.channel_id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in ("succeeded", "failed")


class ChatAttempt(OrgScopedModel):
    """One HTTP try of a chat delivery (like :class:`~playbooks.models.WebhookAttempt`)."""

    delivery = models.ForeignKey(ChatDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    retry_in_seconds = models.PositiveIntegerField(null=True, blank=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="playbooks_chatattempt_unique_number"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of chat delivery {self.delivery_id}"
