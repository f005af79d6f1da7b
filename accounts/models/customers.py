"""The customer model: accounts, contacts, catalog, contracts, timeline, success plans, capacity."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Coalesce, Concat, Lower

from cs_platform.tenancy import OrgScopedModel

from ..choices import (
    NON_TOUCH_ACTIVITY_TYPES,
    ActivityType,
    ContractStatus,
    ObjectiveStatus,
    Seniority,
    Sentiment,
    TouchModel,
)

__all__ = [
    "Account",
    "Activity",
    "ActivityContact",
    "CapacityTarget",
    "Contact",
    "Contract",
    "ContractLine",
    "Objective",
    "Product",
    "SuccessPlan",
]

CENT = Decimal("0.01")
MONEY = {"max_digits": 14, "decimal_places": 2}


class Account(OrgScopedModel):
    """A customer company. ARR is derived from its contracts and never typed in.

    ``arr`` is the account's own current ARR and ``hierarchy_arr`` adds every descendant's; they and
    ``next_renewal_date`` are kept in step with contract changes by
    :func:`accounts.services.refresh_current_arr`, so lists sort and filter on them without joins.
    """

    external_id = models.CharField(max_length=120, null=True, blank=True, help_text="CRM id used for upserts")
    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=200, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    employees = models.PositiveIntegerField(null=True, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_accounts"
    )
    lifecycle_stage = models.CharField(max_length=40, default="onboarding")
    touch_model = models.CharField(max_length=8, choices=TouchModel.choices, default=TouchModel.LOW)
    tags = models.JSONField(default=list, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    customer_since = models.DateField(null=True, blank=True)
    churned_at = models.DateField(null=True, blank=True)
    icp_fit = models.BooleanField(default=False)
    referenceable = models.BooleanField(default=False)
    arr = models.DecimalField(default=Decimal("0"), editable=False, **MONEY)
    hierarchy_arr = models.DecimalField(default=Decimal("0"), editable=False, **MONEY)
    next_renewal_date = models.DateField(
        null=True, blank=True, editable=False, help_text="Earliest end date of a live contract, kept with ARR"
    )
    #: When the CRM record this account syncs from was deleted there (``None``: not deleted). The account
    #: is kept with its history (renewals, health, ARR); a restore in the CRM clears it
    #: (``accounts.source_deletions``, docs/integrations.md "Deletions in the CRM").
    source_deleted_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the CRM record was deleted in the CRM; empty = not"
    )
    # What ``q`` searches: one lower-cased column, so one trigram index (Postgres, migration 0002) can
    # answer a substring search over 50,000 accounts without scanning them all.
    search_text = models.GeneratedField(
        expression=Lower(
            Concat("name", models.Value(" "), "domain", models.Value(" "), Coalesce("external_id", models.Value("")))
        ),
        output_field=models.TextField(),
        db_persist=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "external_id"], name="accounts_account_unique_org_extid"),
        ]
        indexes = [
            models.Index(fields=["organization", "name"], name="accounts_account_org_name"),
            models.Index(fields=["organization", "owner"], name="accounts_account_org_owner"),
            models.Index(fields=["organization", "arr"], name="accounts_account_org_arr"),
            models.Index(fields=["organization", "lifecycle_stage"], name="accounts_account_org_stage"),
            models.Index(fields=["organization", "parent"], name="accounts_account_org_parent"),
            models.Index(fields=["organization", "next_renewal_date"], name="accounts_account_org_renewal"),
            models.Index(
                fields=["organization", "source_deleted_at"],
                name="accounts_account_org_srcdel",
                condition=models.Q(source_deleted_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_churned(self) -> bool:
        return self.churned_at is not None or self.lifecycle_stage == "churned"


class Contact(OrgScopedModel):
    """A person at a customer account, with the roles they play (champion, sponsor, …)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    external_id = models.CharField(max_length=120, null=True, blank=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    title = models.CharField(max_length=200, blank=True)
    roles = models.JSONField(default=list, blank=True, help_text="Subset of ContactRole values")
    seniority = models.CharField(max_length=16, choices=Seniority.choices, blank=True)
    is_active = models.BooleanField(default=True)
    #: The day the contact joined the account (point in time: the health signals count the contact from
    #: this day on). ``None`` = unknown: counted from the day the row was recorded (``created_at``).
    started_on = models.DateField(
        null=True,
        blank=True,
        help_text="Day the contact joined the account; empty = counted from the day it was recorded",
    )
    departed_at = models.DateField(null=True, blank=True)
    last_engaged_at = models.DateTimeField(null=True, blank=True)
    trained = models.BooleanField(default=False)
    unsubscribed = models.BooleanField(default=False)
    #: When the CRM record was deleted there; the contact was deactivated then (``is_active`` false) and is
    #: reactivated when the CRM restores it (only a contact the deletion deactivated).
    source_deleted_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the CRM record was deleted in the CRM; empty = not"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "external_id"], name="accounts_contact_unique_org_extid"),
        ]
        indexes = [
            models.Index(fields=["organization", "account"], name="accounts_contact_org_account"),
            models.Index(fields=["organization", "email"], name="accounts_contact_org_email"),
        ]

    def __str__(self) -> str:
        return self.name


class Product(OrgScopedModel):
    """A catalog item that contract lines sell."""

    sku = models.CharField(max_length=80)
    name = models.CharField(max_length=200)
    product_line = models.CharField(max_length=100, blank=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "sku"], name="accounts_product_unique_org_sku")]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class Contract(OrgScopedModel):
    """A subscription agreement of an account; its ARR is the sum of its lines' ARR."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contracts")
    number = models.CharField(max_length=80)
    start_date = models.DateField()
    end_date = models.DateField()
    status = models.CharField(max_length=12, choices=ContractStatus.choices, default=ContractStatus.ACTIVE)
    auto_renew = models.BooleanField(default=False)
    currency = models.CharField(max_length=3, default="USD")
    seats = models.PositiveIntegerField(null=True, blank=True, help_text="Licensed seats")
    arr = models.DecimalField(default=Decimal("0"), editable=False, **MONEY)
    #: When the CRM deal/opportunity this contract syncs from was deleted there (the contract, its lines,
    #: ARR and renewal are kept; a restore in the CRM clears it).
    source_deleted_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the CRM record was deleted in the CRM; empty = not"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-start_date", "number"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="accounts_contract_unique_org_number"),
            models.CheckConstraint(
                condition=models.Q(end_date__gte=models.F("start_date")), name="accounts_contract_end_after_start"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "account", "end_date"], name="accounts_contract_org_acct_end"),
            models.Index(fields=["organization", "end_date"], name="accounts_contract_org_end"),
        ]

    def __str__(self) -> str:
        return self.number


def line_arr(quantity: Decimal, annual_unit_price: Decimal, discount: Decimal) -> Decimal:
    """Line ARR = quantity × annual unit price × (1 − discount), rounded half-up to the cent."""
    return (Decimal(quantity) * Decimal(annual_unit_price) * (1 - Decimal(discount))).quantize(
        CENT, rounding=ROUND_HALF_UP
    )


class ContractLine(OrgScopedModel):
    """One product on a contract. ``arr`` is stored (computed on save) so sums run in SQL."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="contract_lines")
    quantity = models.DecimalField(max_digits=12, decimal_places=2, validators=[MinValueValidator(0)])
    annual_unit_price = models.DecimalField(validators=[MinValueValidator(0)], **MONEY)
    discount = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0"),
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Fraction between 0 and 1",
    )
    arr = models.DecimalField(default=Decimal("0"), editable=False, **MONEY)

    class Meta(OrgScopedModel.Meta):
        ordering = ["id"]
        indexes = [models.Index(fields=["organization", "contract"], name="accounts_line_org_contract")]

    def save(self, *args, **kwargs) -> None:
        self.arr = line_arr(self.quantity, self.annual_unit_price, self.discount)
        super().save(*args, **kwargs)


class Activity(OrgScopedModel):
    """A timeline entry on an account: call, meeting, email, QBR, note, … Notes are not customer touches."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="activities")
    type = models.CharField(max_length=12, choices=ActivityType.choices)
    occurred_at = models.DateTimeField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )
    contacts = models.ManyToManyField(Contact, through="ActivityContact", blank=True, related_name="activities")
    summary = models.TextField(blank=True)
    sentiment = models.CharField(max_length=10, choices=Sentiment.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-occurred_at"]
        verbose_name_plural = "activities"
        indexes = [
            models.Index(fields=["organization", "account", "-occurred_at"], name="accounts_activity_org_acct_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} {self.occurred_at:%Y-%m-%d}"

    @property
    def is_customer_touch(self) -> bool:
        return self.type not in NON_TOUCH_ACTIVITY_TYPES


class ActivityContact(OrgScopedModel):
    """Which contacts took part in an activity (a through table so the row carries its organization)."""

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE)

    class Meta(OrgScopedModel.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "activity", "contact"], name="accounts_activitycontact_unique"
            )
        ]


class SuccessPlan(OrgScopedModel):
    """An account's success plan: the customer's objectives, reviewed at each QBR."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="success_plan")
    title = models.CharField(max_length=200, default="Success plan")
    last_reviewed_at = models.DateField(null=True, blank=True)
    next_review_at = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        indexes = [models.Index(fields=["organization", "account"], name="accounts_plan_org_account")]

    def __str__(self) -> str:
        return self.title


class Objective(OrgScopedModel):
    """One objective of a success plan, measured the customer's way (baseline → target; ``current`` is the
    latest reading, on ``measured_on``)."""

    plan = models.ForeignKey(SuccessPlan, on_delete=models.CASCADE, related_name="objectives")
    title = models.CharField(max_length=200)
    customer_measure = models.CharField(max_length=200, blank=True, help_text="The customer's own measure")
    baseline = models.CharField(max_length=80, blank=True)
    target = models.CharField(max_length=80, blank=True)
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=ObjectiveStatus.choices, default=ObjectiveStatus.NOT_STARTED)
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    current = models.CharField(max_length=80, blank=True, help_text="The measure's latest reading")
    measured_on = models.DateField(null=True, blank=True, help_text="When ``current`` was read")

    class Meta(OrgScopedModel.Meta):
        ordering = ["due_date", "id"]
        indexes = [models.Index(fields=["organization", "plan"], name="accounts_objective_org_plan")]

    def __str__(self) -> str:
        return self.title


class CapacityTarget(OrgScopedModel):
    """How big a CSM's book should be for one touch model: an account range and/or an ARR range."""

    touch_model = models.CharField(max_length=8, choices=TouchModel.choices)
    min_accounts = models.PositiveIntegerField(null=True, blank=True)
    max_accounts = models.PositiveIntegerField(null=True, blank=True)
    min_arr = models.DecimalField(null=True, blank=True, **MONEY)
    max_arr = models.DecimalField(null=True, blank=True, **MONEY)

    class Meta(OrgScopedModel.Meta):
        ordering = ["touch_model"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "touch_model"], name="accounts_capacity_unique_org_touch")
        ]

    def __str__(self) -> str:
        return f"{self.touch_model}: {self.min_accounts}–{self.max_accounts} accounts"
