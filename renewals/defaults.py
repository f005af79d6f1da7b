"""Per-organization defaults of the renewals app: the churn-reason taxonomy of spec §4."""

from __future__ import annotations

from .models import DEFAULT_CHURN_DRIVERS, DEFAULT_CHURN_REASONS, ChurnReason


def ensure_default_churn_reasons(organization_id: int) -> None:
    """Create the spec's default churn reasons that the organization lacks (by code). Idempotent."""
    have = set(ChurnReason.objects.for_org(organization_id).values_list("code", flat=True))
    ChurnReason.all_orgs.bulk_create(
        [
            ChurnReason(
                organization_id=organization_id,
                code=code,
                label=label,
                avoidable=avoidable,
                driver=DEFAULT_CHURN_DRIVERS.get(code, ""),
                position=i,
            )
            for i, (code, label, avoidable) in enumerate(DEFAULT_CHURN_REASONS)
            if code not in have
        ]
    )
