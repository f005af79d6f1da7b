"""The tenancy models: organizations (tenants), their members, teams, invitations, keys and job runs.

They are the kernel every app stands on (``OrgScopedModel`` points at ``Organization``; pages, the API
and tasks resolve members, keys and runs), so they live in ``cs_platform``, the bottom layer. They keep
``Meta.app_label = "accounts"``: the app that has always owned them keeps their tables
(``accounts_organization``, ...), their migrations and every ``"accounts.Organization"`` reference, so
moving the code needed no migration. ``accounts.models`` re-exports them. See docs/architecture.md.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from .audit import record_audit
from .choices import DEFAULT_LIFECYCLE_STAGES, JobStatus, Role
from .rls import system_context
from .tenancy import OrgScopedModel

__all__ = [
    "ApiKey",
    "HashedKey",
    "Invitation",
    "JobRun",
    "Membership",
    "Organization",
    "Team",
    "UserPreference",
    "WriteKey",
]

APP_LABEL = "accounts"  # see the module docstring


def default_health_bands() -> dict[str, float]:
    """Colour bands of spec §3: red < 50 ≤ yellow < 75 ≤ green."""
    return {"yellow": 50.0, "green": 75.0}


def default_touch_cadences() -> dict[str, int | None]:
    """Expected days between customer touches per touch model (tech touch has none)."""
    return {"high": 14, "low": 30, "tech": None}


def default_lifecycle_stages() -> list[str]:
    return list(DEFAULT_LIFECYCLE_STAGES)


class Organization(models.Model):
    """A tenant: one CS team's whole workspace. Nothing crosses from one organization to another."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    currency = models.CharField(max_length=3, default="USD")
    fiscal_year_start_month = models.PositiveSmallIntegerField(default=1)
    renewal_lead_days = models.PositiveIntegerField(default=120)
    time_zone = models.CharField(max_length=64, default="UTC")
    health_bands = models.JSONField(default=default_health_bands)
    touch_cadence_days = models.JSONField(default=default_touch_cadences)
    lifecycle_stages = models.JSONField(default=default_lifecycle_stages)
    # Event ingestion (spec §8): what a `group` call naming an unknown account does, and how long raw
    # events are kept once rolled up into daily usage metrics.
    create_accounts_from_events = models.BooleanField(
        default=False, help_text="A group call naming an unknown account creates it (else the event is rejected)"
    )
    raw_event_retention_days = models.PositiveIntegerField(default=90)
    # CSV imports (set by the operator; empty = the server's IMPORT_MAX_BYTES / IMPORT_MAX_ROWS).
    import_max_bytes = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Largest CSV upload in bytes; empty = the server default (IMPORT_MAX_BYTES)"
    )
    import_max_rows = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most data rows in one CSV file; empty = the server default (IMPORT_MAX_ROWS)"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = APP_LABEL
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Team(OrgScopedModel):
    """A group of CSMs under a manager; leaders write the accounts of the teams they manage."""

    name = models.CharField(max_length=120)
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="managed_teams"
    )

    class Meta(OrgScopedModel.Meta):
        app_label = APP_LABEL
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="accounts_team_unique_org_name")]

    def __str__(self) -> str:
        return self.name


class Membership(OrgScopedModel):
    """A user's seat in an organization, with one role there (a user may have different roles elsewhere)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CSM)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(OrgScopedModel.Meta):
        app_label = APP_LABEL
        ordering = ["user__email"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="accounts_membership_unique_org_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization_id} ({self.role})"


class Invitation(OrgScopedModel):
    """An invitation to join an organization with a role, sent to an email and accepted by its owner.

    Nobody becomes a member of an organization without their consent (issue 18, finding 4): an
    admin invites an email; the person opens the emailed link, signs in as that email's user (or,
    with no account yet, chooses a password) and accepts. The link's token is single-use and
    expires; only its SHA-256 digest is stored. At most one invitation per email is pending in an
    organization: inviting again replaces it (the old link stops working).
    """

    email = models.EmailField(max_length=254, help_text="Lower case; the invitee must sign in as this email")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CSM)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="invitations")
    # Global unique index, like HashedKey.key_hash: the link names no organization, lookup is by digest.
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    declined_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(OrgScopedModel.Meta):
        app_label = APP_LABEL
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(accepted_at__isnull=True, declined_at__isnull=True, revoked_at__isnull=True),
                name="accounts_invitation_unique_org_open_email",
            )
        ]
        indexes = [models.Index(fields=["organization", "created_at"], name="accounts_invite_org_created")]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.organization_id} ({self.status})"

    @property
    def status(self) -> str:
        """``accepted``, ``declined``, ``revoked``, ``expired`` or ``pending``."""
        if self.accepted_at is not None:
            return "accepted"
        if self.declined_at is not None:
            return "declined"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"

    @property
    def is_open(self) -> bool:
        """Still answerable: neither accepted, declined, revoked nor expired."""
        return self.status == "pending"


class UserPreference(models.Model):
    """A user's own settings, kept on the user's side: no organization can set them.

    ``last_organization`` is where the user lands after signing in: the organization whose pages
    they opened last (or chose by accepting an invitation), never one decided by another org.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="preference"
    )
    last_organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = APP_LABEL

    def __str__(self) -> str:
        return f"Preferences of {self.user_id}"


def _hash_secret(raw: str) -> str:
    # Keys carry 256 bits of randomness, so a fast unsalted digest is enough (no dictionary to attack).
    return hashlib.sha256(raw.encode()).hexdigest()


class HashedKey(OrgScopedModel):
    """Abstract secret key of an organization. Only its SHA-256 digest is stored; the raw key is shown
    once, at creation. Subclasses set ``PREFIX`` so a key's kind is recognisable (and leaks are greppable)."""

    PREFIX = ""
    AUDIT_SUBJECT = "key"  # the audit log's subject type: api_key, write_key
    AUTH_RELATED: tuple[str, ...] = ("organization",)  # joined when authenticating

    name = models.CharField(max_length=120, default="Key")
    key_prefix = models.CharField(max_length=16, help_text="First characters of the key, to recognise it in lists")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta(OrgScopedModel.Meta):
        abstract = True
        app_label = APP_LABEL
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @classmethod
    def issue(
        cls, *, organization: Organization, name: str | None = None, by: Any = None, **extra: Any
    ) -> tuple[Any, str]:
        """Create a key; returns the row and the raw key, which is never stored.

        The creation is written to the audit log (``<AUDIT_SUBJECT>.created``) in the same transaction, with
        ``by`` as the actor (``None``: the operator, e.g. a management command).
        """
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        fields = {"name": name} if name else {}
        with transaction.atomic():
            key = cls.all_orgs.create(
                organization=organization, key_prefix=raw[:12], key_hash=_hash_secret(raw), **fields, **extra
            )
            key._audit("created", by)
        return key, raw

    @classmethod
    def authenticate(cls, raw: str) -> Any:
        """The live key for ``raw``, or ``None``. Lookup is by digest, so timing reveals nothing of the key."""
        if not raw.startswith(cls.PREFIX):
            return None
        # Before the organization is known (row-level security: a system read, by digest only).
        with system_context(f"{cls.__name__}.authenticate: a key looked up by its digest"):
            return (
                cls.all_orgs.select_related(*cls.AUTH_RELATED)
                .filter(key_hash=_hash_secret(raw), revoked_at__isnull=True)
                .first()
            )

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def revoke(self, *, by: Any = None) -> bool:
        """Revoke the key (it stops working at once) and audit it; returns whether it was still active
        (revoking twice keeps the first revocation and writes one entry)."""
        now = timezone.now()
        with transaction.atomic():
            changed = type(self).all_orgs.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=now) > 0
            if changed:
                self.revoked_at = now
                self._audit("revoked", by)
        return changed

    def _audit(self, verb: str, by: Any) -> None:
        data = {"key_prefix": self.key_prefix}
        if getattr(self, "role", None):
            data["role"] = self.role
        if getattr(self, "user_id", None):
            data["user_id"] = self.user_id
        record_audit(
            self.organization_id,
            f"{self.AUDIT_SUBJECT}.{verb}",
            subject_type=self.AUDIT_SUBJECT,
            subject_id=self.pk,
            subject_label=f"{self.name} ({self.key_prefix}…)",
            actor=by,
            data=data,
        )


class ApiKey(HashedKey):
    """An organization's API key, carrying a role. A key may be bound to a user, whom it then acts as
    (never above the user's current role); a ``csm`` key writes that user's book."""

    PREFIX = "rtn_"
    AUDIT_SUBJECT = "api_key"
    AUTH_RELATED = ("organization", "user")

    name = models.CharField(max_length=120, default="API key")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys"
    )

    class Meta(HashedKey.Meta):
        app_label = APP_LABEL
        indexes = [models.Index(fields=["organization", "revoked_at"], name="accounts_apikey_org_revoked")]


class WriteKey(HashedKey):
    """An ingestion-only key (Segment-compatible tracking API, HTTP Basic user name). It can send events
    and nothing else: it never authenticates the REST API."""

    PREFIX = "rwk_"
    AUDIT_SUBJECT = "write_key"

    name = models.CharField(max_length=120, default="Write key")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(HashedKey.Meta):
        app_label = APP_LABEL
        indexes = [models.Index(fields=["organization", "revoked_at"], name="accounts_writekey_org_revoked")]


class JobRun(OrgScopedModel):
    """One run of a background job (import, recompute, ARR refresh, …) and what came of it."""

    kind = models.CharField(max_length=60)
    status = models.CharField(max_length=12, choices=JobStatus.choices, default=JobStatus.QUEUED)
    params = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta(OrgScopedModel.Meta):
        app_label = APP_LABEL
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "kind", "-created_at"], name="accounts_jobrun_org_kind")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def progress_percent(self) -> int:
        if not self.progress_total:
            return 100 if self.status == JobStatus.SUCCEEDED else 0
        return min(100, round(100 * self.progress_done / self.progress_total))

    @property
    def is_stalled(self) -> bool:
        """Running for longer than the hard task time limit: its worker died (a killed process records
        nothing), so it will only come back when the broker redelivers it, or when an admin runs it again."""
        limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
        return (
            self.status == JobStatus.RUNNING
            and self.started_at is not None
            and timezone.now() - self.started_at > limit
        )

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
