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
