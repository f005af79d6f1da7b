"""Demo feature requests (``seed_demo``, registered by FeedbackConfig at order 40): a product backlog of
features, bugs and how-tos, each linked to several accounts across books (with the owner as the requesting
CSM, an importance, a comment, sometimes the lost deal it cost), in every status; two duplicates already
merged. Bugs carry tracker keys (``PROD-…``, :data:`BUG_KEYS`) that health's demo puts on a few tickets, so a
request page shows its helpdesk tickets. Deterministic for a seed and day. Written directly (no status-change
events: seeding is not a change to notify)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from accounts.models import Account, Organization

from .models_requests import FeatureRequest, FeatureRequestChange, FeatureRequestLink

__all__ = ["BUG_KEYS", "seed", "wipe"]

# title, type, area, status, issue key, description
BACKLOG = [
    ("Salesforce two-way sync of health scores", "feature", "Integrations", "planned", "PROD-212",
     "Write the health colour and score back to the Salesforce account so AEs see it in their pipeline."),
    ("SSO with Okta SCIM provisioning", "feature", "Security", "under_review", "PROD-187",
     "Provision and deprovision users from Okta; security reviews at renewal ask for it."),
    ("Export dashboards to PDF", "feature", "Reporting", "new", None,
     "QBR decks: customers want the usage dashboard as a PDF they can forward."),
    ("Usage report times out for large workspaces", "bug", "Reporting", "planned", "PROD-233",
     "Workspaces above 2,000 seats see a timeout on the monthly usage report."),
    ("Data residency in the EU region", "feature", "Platform", "under_review", "PROD-150",
     "Hosting and backups kept in the EU; blocks several public-sector renewals."),
    ("Mobile app: offline mode", "feature", "Mobile", "new", None,
     "Field teams lose their drafts when the connection drops."),
    ("Duplicate notifications after a role change", "bug", "Platform", "shipped", "PROD-198",
     "Users moved between teams receive every notification twice."),
    ("How to configure custom fields on imports", "how_to", "Integrations", "shipped", None,
     "Admins ask how to map extra CSV columns to custom fields."),
    ("Audit log API", "feature", "Security", "planned", "PROD-241",
     "Stream the audit log to the customer's SIEM."),
    ("Slack alerts for at-risk accounts", "feature", "Integrations", "new", None,
     "Post to a channel when an account turns red."),
    ("Chart colours unreadable in dark mode", "bug", "Reporting", "declined", "PROD-120",
     "Dark mode is not supported yet; tracked with the theming project."),
    ("Bulk edit of account owners", "feature", "Platform", "under_review", None,
     "Reassigning a departing CSM's book takes one account at a time."),
]  # fmt: skip
#: Duplicates merged into the request at that index of BACKLOG.
DUPLICATES = [("PDF export of the health dashboard", 2), ("Okta user provisioning", 1)]
BUG_KEYS = tuple(key for _t, kind, _a, _s, key, _d in BACKLOG if kind == "bug" and key)
COMMENTS = [
    "Raised in the last QBR by the VP of Operations.",
    "Their champion asks for it every month.",
    "Mentioned as a condition for expanding to the EMEA team.",
    "Workaround in place, but it costs them a day a month.",
    "Came up in the renewal call; procurement is waiting on it.",
    "",
]


def wipe(organization: Organization) -> None:
    """Delete the organization's requests before its accounts go (``seed_demo`` replacing a demo)."""
    for model in (FeatureRequestChange, FeatureRequestLink, FeatureRequest):
        model.all_orgs.filter(organization_id=organization.pk)._raw_delete(model.all_orgs.db)


def seed(
    organization: Organization, *, seed: int, today: date, log: Callable[[str], None] | None = None
) -> dict[str, int]:
    """accounts.demo.seed_demo's hook: the backlog, linked across accounts; returns row counts."""
    rng = random.Random(f"{seed}:feature-requests")
    org_id = organization.pk
    accounts = list(
        Account.all_orgs.filter(organization_id=org_id, owner__isnull=False)
        .order_by("-arr", "pk")
        .values("id", "owner_id", "arr", "churned_at")[:400]
    )
    if not accounts:
        return {"feature_requests": 0, "feature_request_links": 0}

    def at(days_ago: int) -> datetime:
        return datetime.combine(today - timedelta(days=days_ago), time(10, 0), tzinfo=UTC)

    requests: list[FeatureRequest] = []
    for index, (title, kind, area, status, key, description) in enumerate(BACKLOG):
        requests.append(FeatureRequest(
            organization_id=org_id, title=title, type=kind, product_area=area, status=status,
            external_issue_key=key, external_issue_url=f"https://tracker.example.com/browse/{key}" if key else "",
            description=description, created_at=at(200 - index * 12),
            status_changed_at=at(30 + index) if status != "new" else None,
        ))  # fmt: skip
    FeatureRequest.all_orgs.bulk_create(requests)
    links: list[FeatureRequestLink] = []
    seen: set[tuple[int, int]] = set()
    for index, fr in enumerate(requests):
        # The first requests are the most asked for: more, and bigger, accounts wait on them.
        count = max(2, 14 - index) + rng.randint(0, 3)
        pool = accounts[: max(count * 3, 40)]
        for account in rng.sample(pool, min(count, len(pool))):
            if (fr.pk, account["id"]) in seen:
                continue
            seen.add((fr.pk, account["id"]))
            links.append(FeatureRequestLink(
                organization_id=org_id, request=fr, account_id=account["id"], requested_by_id=account["owner_id"],
                importance=rng.choice(("low", "medium", "medium", "high", "high", "critical")),
                comment=rng.choice(COMMENTS),
                blocked_deal=f"OPP-{rng.randint(10000, 99999)}" if rng.random() < 0.06 else "",
                created_at=fr.created_at + timedelta(days=rng.randint(0, 60)),
            ))  # fmt: skip
    merged = []
    for title, index in DUPLICATES:
        survivor = requests[index]
        merged.append(FeatureRequest(
            organization_id=org_id, title=title, type=survivor.type, product_area=survivor.product_area,
            status="new", merged_into=survivor, created_at=survivor.created_at + timedelta(days=5),
        ))  # fmt: skip
    FeatureRequest.all_orgs.bulk_create(merged)
    FeatureRequestLink.all_orgs.bulk_create(links)
    changes = [
        FeatureRequestChange(organization_id=org_id, request=fr, kind="status", from_status="new",
                             to_status=fr.status, source="page", at=fr.status_changed_at)
        for fr in requests if fr.status != "new"
    ] + [
        FeatureRequestChange(organization_id=org_id, request=dup, kind="merged", source="merge",
                             note=f"Merged into #{dup.merged_into_id}", at=dup.created_at + timedelta(days=3))
        for dup in merged
    ]  # fmt: skip
    FeatureRequestChange.all_orgs.bulk_create(changes)
    if log:
        log(f"  {len(requests) + len(merged)} feature requests, {len(links)} account links")
    return {"feature_requests": len(requests) + len(merged), "feature_request_links": len(links)}
