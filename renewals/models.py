"""Renewals and retention (spec §4): renewal opportunities with forecast and outcome, the line-level
bridge of each closed renewal, the churn-reason taxonomy and quarterly renewal targets.

Retention analytics (``renewals/analytics.py``) read contracts and their lines, not these rows: ARR
is always derived from contracts. Renewals add the forecast, the outcome and the *why*.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models

from accounts.models.customers import MONEY
from cs_platform.tenancy import OrgScopedModel

__all__ = [
    "Backtest",
    "ChurnDriver",
    "ChurnReason",
    "ForecastCategory",
    "Renewal",
    "RenewalForecastChange",
    "RenewalLineChange",
    "RenewalOutcome",
    "RenewalStage",
    "RenewalTarget",
]


class ForecastCategory(models.TextChoices):
    COMMIT = "commit", "Commit"
    LIKELY = "likely", "Likely"
    AT_RISK = "at_risk", "At risk"
    CHURN = "churn", "Churn"
    UPSIDE = "upside", "Upside"


class RenewalStage(models.TextChoices):
    NOT_STARTED = "not_started", "Not started"
    IN_PROGRESS = "in_progress", "In progress"
    VERBAL = "verbal", "Verbal"
    WON = "won", "Won"
    LOST = "lost", "Lost"


class RenewalOutcome(models.TextChoices):
    RENEWED = "renewed", "Renewed"
    EXPANDED = "expanded", "Expanded"
    CONTRACTED = "contracted", "Contracted"
    CHURNED = "churned", "Churned"


class RenewalTiming(models.TextChoices):
    EARLY = "early", "Early"
    ON_TIME = "on_time", "On time"
    LATE = "late", "Late"


#: Spec §4 default taxonomy: (code, label, avoidable). Created with every organization, editable.
DEFAULT_CHURN_REASONS: list[tuple[str, str, bool]] = [
    ("poor_adoption", "Poor adoption", True),
    ("product_fit", "Product fit / missing features", True),
    ("lost_champion", "Lost champion", True),
    ("support_quality", "Support quality", True),
    ("price", "Price", True),
    ("competitor", "Competitor", True),
    ("budget_cut", "Budget cut", True),
    ("acquired_merged", "Acquired / merged", False),
    ("out_of_business", "Out of business", False),
]


class ChurnDriver(models.TextChoices):
    """What drove a loss, in the seed's terms ("what percent were driven by poor adoption, what percent by
    product fit issues or product gaps, and what percent by factors that were hard to affect")."""

    ADOPTION = "adoption", "Poor adoption"
    PRODUCT_GAP = "product_gap", "Product fit or gaps"
    SERVICE = "service", "Service"
    COMMERCIAL = "commercial", "Commercial"
    EXTERNAL = "external", "Hard to affect (external)"


#: The driver of each default reason (docs/metrics.md, "Churn drivers"). A lost champion is an adoption
#: failure (the product lived with one person: the seed's remedy is training more users and higher
#: relationships); a competitor win and a price loss are commercial; a budget cut is a restructuring,
#: which the seed counts as hard to affect, even though spec §4 calls it avoidable.
DEFAULT_CHURN_DRIVERS: dict[str, str] = {
    "poor_adoption": ChurnDriver.ADOPTION,
    "product_fit": ChurnDriver.PRODUCT_GAP,
    "lost_champion": ChurnDriver.ADOPTION,
    "support_quality": ChurnDriver.SERVICE,
    "price": ChurnDriver.COMMERCIAL,
    "competitor": ChurnDriver.COMMERCIAL,
    "budget_cut": ChurnDriver.EXTERNAL,
    "acquired_merged": ChurnDriver.EXTERNAL,
    "out_of_business": ChurnDriver.EXTERNAL,
}


class ChurnReason(OrgScopedModel):
    """One entry of the organization's churn-reason taxonomy; ``avoidable`` is decided here, once, so
    that every loss recorded with this reason is classified the same way."""

    code = models.SlugField(max_length=40)
    label = models.CharField(max_length=120)
    avoidable = models.BooleanField(default=True)
    driver = models.CharField(
        max_length=12,
        choices=ChurnDriver.choices,
        blank=True,
        default="",
        help_text="What drove the loss (adoption, product gap, service, commercial, external); empty = unclassified",
    )
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True, help_text="Retired reasons stay on past renewals")

    class Meta(OrgScopedModel.Meta):
        ordering = ["position", "label"]
        constraints = [models.UniqueConstraint(fields=["organization", "code"], name="renewals_churnreason_unique")]

    def __str__(self) -> str:
        return self.label


class Renewal(OrgScopedModel):
    """The renewal of one contract, opened ``renewal_lead_days`` before its end (one per contract).

    While open it carries the forecast: category, ARR, probability, stage, the CSM's call and the
    leader's final call. Closing records the outcome, the successor contract, ``new_arr`` and, for any
    loss (contracted or churned), a churn reason. ``current_arr`` is the ending contract's ARR; the
    :class:`RenewalLineChange` rows explain ``new_arr − current_arr`` line by line and sum to it exactly.
    """

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="renewals")
    contract = models.ForeignKey("accounts.Contract", on_delete=models.CASCADE, related_name="renewals")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    due_date = models.DateField(help_text="The ending contract's end date")
    current_arr = models.DecimalField(default=Decimal("0"), **MONEY)
    forecast_arr = models.DecimalField(default=Decimal("0"), **MONEY)
    forecast_category = models.CharField(
        max_length=8, choices=ForecastCategory.choices, default=ForecastCategory.LIKELY
    )
    probability = models.PositiveSmallIntegerField(default=70, validators=[MaxValueValidator(100)])
    stage = models.CharField(max_length=12, choices=RenewalStage.choices, default=RenewalStage.NOT_STARTED)
    csm_call = models.CharField(max_length=8, choices=ForecastCategory.choices, blank=True)
    csm_call_arr = models.DecimalField(null=True, blank=True, **MONEY)
    final_call = models.CharField(max_length=8, choices=ForecastCategory.choices, blank=True)
    final_call_arr = models.DecimalField(null=True, blank=True, **MONEY)
    notes = models.TextField(blank=True)

    outcome = models.CharField(max_length=10, choices=RenewalOutcome.choices, blank=True)
    closed_on = models.DateField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    timing = models.CharField(max_length=8, choices=RenewalTiming.choices, blank=True)
    successor_contract = models.ForeignKey(
        "accounts.Contract", null=True, blank=True, on_delete=models.SET_NULL, related_name="renewed_from"
    )
    new_arr = models.DecimalField(null=True, blank=True, **MONEY)
    churn_reason = models.ForeignKey(
        ChurnReason, null=True, blank=True, on_delete=models.PROTECT, related_name="renewals"
    )
    avoidable = models.BooleanField(null=True, blank=True, help_text="Copied from the churn reason at closing")
    churn_notes = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["due_date", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "contract"], name="renewals_renewal_one_per_contract")
        ]
        indexes = [
            models.Index(fields=["organization", "due_date"], name="renewals_renewal_org_due"),
            models.Index(fields=["organization", "account", "due_date"], name="renewals_renewal_org_acct"),
            models.Index(fields=["organization", "owner", "due_date"], name="renewals_renewal_org_owner"),
        ]

    def __str__(self) -> str:
        return f"Renewal of {self.contract_id} due {self.due_date}"

    @property
    def is_open(self) -> bool:
        return not self.outcome


class LineChangeKind(models.TextChoices):
    UNCHANGED = "unchanged", "Unchanged"
    ADDED = "added", "Product added"
    DROPPED = "dropped", "Product dropped"
    QUANTITY = "quantity", "Quantity change"
    PRICE = "price", "Price or discount change"
    QUANTITY_AND_PRICE = "quantity_price", "Quantity and price change"


class RenewalLineChange(OrgScopedModel):
    """One product's step in a closed renewal's bridge: old line ARR → new line ARR.

    Σ ``delta`` over a renewal's rows = ``new_arr − current_arr``, to the cent.
    """

    renewal = models.ForeignKey(Renewal, on_delete=models.CASCADE, related_name="line_changes")
    product = models.ForeignKey("accounts.Product", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=LineChangeKind.choices)
    old_quantity = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    new_quantity = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    old_arr = models.DecimalField(default=Decimal("0"), **MONEY)
    new_arr = models.DecimalField(default=Decimal("0"), **MONEY)
    delta = models.DecimalField(default=Decimal("0"), **MONEY)

    class Meta(OrgScopedModel.Meta):
        ordering = ["renewal", "product"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "renewal", "product"], name="renewals_linechange_unique_product"
            )
        ]


class RenewalTarget(OrgScopedModel):
    """What leadership expects to retain in a fiscal quarter (for "forecast vs target")."""

    quarter_start = models.DateField()
    target_arr = models.DecimalField(
        null=True, blank=True, help_text="ARR to keep from the renewals due in the quarter", **MONEY
    )
    target_grr = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["quarter_start"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "quarter_start"], name="renewals_target_unique_quarter")
        ]


class RenewalForecastChange(OrgScopedModel):
    """One changed field of a renewal's forecast (category, ARR, probability, stage, calls, owner, notes,
    and the outcome at closing): who changed it, when, from what to what.

    The trail behind forecast accuracy ("what did the CSM call, and when?") and the answer to "who moved
    this renewal to at risk?". Values are stored as text, as shown in the API (decimals as "1234.50",
    users by email); an empty string stands for "not set".
    """

    renewal = models.ForeignKey(Renewal, on_delete=models.CASCADE, related_name="forecast_changes")
    field = models.CharField(max_length=32)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["renewal", "changed_at", "id"]
        indexes = [
            models.Index(fields=["organization", "renewal", "changed_at"], name="renewals_fchange_org_renewal"),
            models.Index(fields=["organization", "changed_at"], name="renewals_fchange_org_at"),
        ]


class Backtest(OrgScopedModel):
    """One backtest of a scorecard version against closed renewals (issue 14): each renewal due between
    ``date_from`` and ``date_to`` (inclusive) is scored as of ``horizon_days`` before its due date, with only
    what was known then, and compared with its outcome.

    Runs in the background (``renewals.tasks.run_backtest_task``, recorded in ``job``); ``result`` holds the
    figures (``renewals.backtest.run_backtest`` documents its keys). Kept per version, so two versions
    of a scorecard compare side by side. The version may be a draft (an unpublished version).
    """

    scorecard = models.ForeignKey("health.Scorecard", on_delete=models.CASCADE, related_name="backtests")
    scorecard_version = models.ForeignKey("health.ScorecardVersion", on_delete=models.CASCADE, related_name="backtests")
    date_from = models.DateField(help_text="First renewal due date included")
    date_to = models.DateField(help_text="Last renewal due date included")
    horizon_days = models.PositiveSmallIntegerField(default=90, help_text="Days before the due date the score is taken")
    job = models.ForeignKey("accounts.JobRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(OrgScopedModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "scorecard", "-created_at"], name="renewals_backtest_org_card"),
        ]

    def __str__(self) -> str:
        return f"Backtest of {self.scorecard_version_id} ({self.date_from}–{self.date_to})"

    @property
    def status(self) -> str:
        """The run's status (``queued``, ``running``, ``succeeded``, ``failed``)."""
        if self.job is not None:
            return self.job.status
        return "succeeded" if self.result else "failed"
