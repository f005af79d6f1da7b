"""Models of templated email (issue 12 §2, the playbook "send a templated email" action): the organization's
email templates and the log of every message sent or skipped.

A template's subject and body are Django template source restricted to merge fields (``{{ account.name }}``,
``{{ contact.first_name }}``, ``{{ csm.name }}``, ``{{ renewal.date }}``, ...) and a few filters; they are
validated on save and rendered in a sandbox (:mod:`playbooks.emails`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.mailing import SkipReason
from cs_platform.tenancy import OrgScopedModel

__all__ = ["EmailSendLog", "EmailSendStatus", "EmailTemplate"]


class EmailTemplate(OrgScopedModel):
    """An email an admin wrote for playbooks to send to an account's contacts: a subject and a body with
    merge fields. Deactivated templates stay (the log points at them) but are not offered to playbooks."""

    name = models.CharField(max_length=120)
    subject = models.CharField(max_length=200)
    body = models.TextField(help_text="Plain text; blank lines separate paragraphs. Merge fields: {{ account.name }}")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-is_active", "name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="playbooks_emailtemplate_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class EmailSendStatus(models.TextChoices):
    SENT = "sent", "Sent"
    SKIPPED_UNSUBSCRIBED = SkipReason.UNSUBSCRIBED.value, SkipReason.UNSUBSCRIBED.label
    SKIPPED_DEPARTED = SkipReason.DEPARTED.value, SkipReason.DEPARTED.label
    SKIPPED_NO_EMAIL = SkipReason.NO_EMAIL.value, SkipReason.NO_EMAIL.label


class EmailSendLog(OrgScopedModel):
    """One contact considered by :func:`playbooks.emails.send_templated_email`: sent, or why not."""

    template = models.ForeignKey(EmailTemplate, null=True, on_delete=models.SET_NULL, related_name="sends")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey("accounts.Contact", null=True, on_delete=models.SET_NULL, related_name="+")
    to = models.EmailField(blank=True)
    subject = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=24, choices=EmailSendStatus.choices)
    at = models.DateTimeField(default=timezone.now)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["organization", "template", "-at"], name="playbooks_emailsend_template")]

    def __str__(self) -> str:
        return f"{self.status} → {self.to or self.contact_id}"
