"""Per-organization defaults of the playbooks app: the three touch segments of spec §5 (by ARR)."""

from __future__ import annotations

from accounts.models import Segment

DEFAULT_SEGMENTS = [
    ("High touch", {"match": "all", "conditions": [{"field": "arr", "op": "gte", "value": "500000"}]}),
    (
        "Low touch",
        {
            "match": "all",
            "conditions": [
                {"field": "arr", "op": "gte", "value": "50000"},
                {"field": "arr", "op": "lt", "value": "500000"},
            ],
        },
    ),
    ("Tech touch", {"match": "all", "conditions": [{"field": "arr", "op": "lt", "value": "50000"}]}),
]


def ensure_default_segments(organization_id: int) -> None:
    """Create the default segments the organization lacks (by name). Idempotent."""
    have = set(Segment.objects.for_org(organization_id).values_list("name", flat=True))
    Segment.all_orgs.bulk_create(
        [
            Segment(organization_id=organization_id, name=name, rules=rules, position=i)
            for i, (name, rules) in enumerate(DEFAULT_SEGMENTS)
            if name not in have
        ]
    )


#: The five built-in CTA types (spec §5) and a few reasons each; an organization may add more.
DEFAULT_CTA_TYPES: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "risk",
        "Risk",
        [
            ("health_red", "Health turned red"),
            ("health_drop", "Health dropped sharply"),
            ("usage_drop", "Usage dropped"),
            ("key_contact_departed", "Key contact departed"),
            ("detractor", "NPS detractor"),
            ("invoice_overdue", "Invoice overdue"),
            ("p1_ticket", "P1 ticket opened"),
            ("no_touch", "No customer touch"),
        ],
    ),
    (
        "lifecycle",
        "Lifecycle",
        [
            ("renewal_prep", "Renewal preparation"),
            ("onboarding", "Onboarding"),
            ("qbr", "Quarterly business review"),
            ("stage_stalled", "Lifecycle stage stalled"),
        ],
    ),
    ("expansion", "Expansion", [("seats_over_licence", "Active users over licensed seats"), ("upsell", "Upsell")]),
    ("objective", "Objective", [("success_plan", "Success plan objective")]),
    ("activity", "Activity", [("follow_up", "Follow-up"), ("other", "Other")]),
]


def ensure_default_cta_types(organization_id: int) -> None:
    """Create the built-in CTA types and their reasons that the organization lacks (by key). Idempotent."""
    from .models import CtaReason, CtaType

    types = {t.key: t for t in CtaType.objects.for_org(organization_id)}
    for position, (key, label, reasons) in enumerate(DEFAULT_CTA_TYPES):
        cta_type = types.get(key)
        if cta_type is None:
            cta_type = CtaType.all_orgs.create(
                organization_id=organization_id, key=key, label=label, is_builtin=True, position=position
            )
        have = set(CtaReason.objects.for_org(organization_id).filter(type=cta_type).values_list("key", flat=True))
        CtaReason.all_orgs.bulk_create(
            [
                CtaReason(organization_id=organization_id, type=cta_type, key=r_key, label=r_label, position=i)
                for i, (r_key, r_label) in enumerate(reasons)
                if r_key not in have
            ]
        )
