"""One small organization with something on every screen, for the browser harness (phone layout, CSP,
accessibility, external requests): a member per role, red / yellow / green / unscored accounts with a week of
snapshots and an override, open and closed renewals, contacts, a timeline, a success plan, keys, a job run,
a webhook and a key feature. Factories only; a few hundred rows, a couple of seconds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from accounts.models import ApiKey, JobRun, Organization, WriteKey
from accounts.services import create_organization, refresh_current_arr
from health.models import KeyFeature
from playbooks.models import WebhookEndpoint
from renewals.models import Renewal
from tests.factories import (
    ActivityFactory,
    ContactFactory,
    MembershipFactory,
    ObjectiveFactory,
    SuccessPlanFactory,
    UserFactory,
)
from tests.renewal_builders import build_book
from tests.signal_factories import (
    CsmPulseFactory,
    HealthOverrideFactory,
    HealthScoreFactory,
    HealthSnapshotFactory,
    components,
)

PASSWORD = "correct horse battery"
ROLES = ("admin", "leader", "csm", "viewer")
WEIGHTS = {"adoption": 25.0, "usage_trend": 15.0, "support": 10.0, "csm_pulse": 10.0}
# Component scores per account, cycling: red, yellow, green, red, green, yellow, ... and one left unscored.
PROFILES = [
    {"adoption": 8.0, "usage_trend": 20.0, "support": 60.0, "csm_pulse": 0.0},
    {"adoption": 55.0, "usage_trend": 70.0, "support": 80.0, "csm_pulse": 50.0},
    {"adoption": 90.0, "usage_trend": 85.0, "support": 100.0, "csm_pulse": 100.0},
]


@dataclass
class Seeded:
    """What the browser tests navigate: the organization, a user per role and the ids of object pages."""

    org: Organization
    users: dict[str, object] = field(default_factory=dict)
    red_account: int = 0
    open_renewal: int = 0
    closed_renewal: int = 0
    job_run: int = 0
    webhook: int = 0
    object_sync: int = 0
    scorecard: int = 0
    email_template: int = 0
    playbook: int = 0
    segment: int = 0
    unsubscribe_token: str = ""
    feature_request: int = 0

    def username(self, role: str) -> str:
        return self.users[role].username


def seed(slug: str = "acme") -> Seeded:
    """Create the organization and its data; every user's password is ``PASSWORD``."""
    org = create_organization(slug=slug, name="Acme Corp")[0]
    out = Seeded(org=org)
    names = {
        "admin": ("Ada", "Admin"),
        "leader": ("Lee", "Park"),
        "csm": ("Dana", "Whitfield"),
        "viewer": ("Vic", "Ng"),
    }
    for role in ROLES:
        first, last = names[role]
        user = UserFactory(
            username=f"{role}@{slug}.example", email=f"{role}@{slug}.example", first_name=first, last_name=last
        )
        user.set_password(PASSWORD)
        user.save()
        MembershipFactory(organization=org, user=user, role=role)
        out.users[role] = user

    renewals = build_book(org, [out.users["csm"], out.users["leader"]], 9)
    today = timezone.localdate()
    accounts = [r.account for r in renewals]
    for i, account in enumerate(accounts[:-1]):  # the last one stays unscored
        scores = PROFILES[[0, 1, 2, 0, 2, 1][i % 6]]
        for days in (7, 3):
            HealthSnapshotFactory(
                account=account,
                date=today - dt.timedelta(days=days),
                components=components({k: min(v + days * 2, 100.0) for k, v in scores.items()}, WEIGHTS),
            )
        snapshot = HealthSnapshotFactory(account=account, date=today, components=components(scores, WEIGHTS))
        HealthScoreFactory(
            account=account, score=snapshot.score, delta_7=Decimal("-6.5"), trend="down" if i % 2 else "flat"
        )
    red = accounts[0]
    out.red_account = red.pk
    HealthOverrideFactory(account=accounts[1], color="red", reason="Escalation from the customer's CFO")
    CsmPulseFactory(account=red, author=out.users["csm"], color="red", note="Champion left")

    ContactFactory(account=red, name="Priya Raman", title="VP Operations", roles=["champion", "power_user"])
    ContactFactory(account=red, name="Marcus Lee", title="CFO", roles=["economic_buyer"])
    ContactFactory(
        account=red,
        name="Helen Ortiz",
        title="COO",
        roles=["executive_sponsor"],
        is_active=False,
        departed_at=today - dt.timedelta(days=20),
    )
    now = timezone.now()
    ActivityFactory(
        account=red,
        author=out.users["csm"],
        type="qbr",
        sentiment="positive",
        occurred_at=now - dt.timedelta(days=12),
        summary="Q3 review: on-time delivery up 6 pts.",
    )
    ActivityFactory(
        account=red,
        author=out.users["csm"],
        type="note",
        occurred_at=now - dt.timedelta(days=40),
        summary="Helen Ortiz is leaving at month end; need a new executive sponsor.",
    )
    plan = SuccessPlanFactory(account=red, next_review_at=today + dt.timedelta(days=30))
    ObjectiveFactory(
        plan=plan,
        title="Cut late deliveries",
        customer_measure="Late deliveries per week",
        baseline="140",
        target="60",
        status="on_track",
        progress=55,
    )

    out.open_renewal = renewals[0].pk
    out.closed_renewal = Renewal.all_orgs.filter(organization=org, outcome="churned").order_by("pk").first().pk
    ApiKey.issue(organization=org, role="viewer", name="BI export")
    WriteKey.issue(organization=org, name="Web app")
    out.job_run = JobRun.all_orgs.create(
        organization=org,
        kind="import_accounts",
        status="succeeded",
        started_at=now,
        finished_at=now,
        progress_total=20,
        progress_done=20,
        counts={"created": 18, "updated": 2},
        params={"file": "accounts.csv"},
    ).pk
    out.webhook = WebhookEndpoint.all_orgs.create(
        organization=org, url="https://hooks.example.com/retain", event_types=["account.created"], secret="s" * 32
    ).pk
    KeyFeature.all_orgs.create(organization=org, event_name="Report Exported", label="Report export")
    # A HubSpot connection with one finished run listing a record it could not apply (Admin → Connectors).
    from integrations.models import SyncRecordError, SyncRun
    from integrations.services import create_connection

    hubspot = create_connection(org, kind="hubspot", name="HubSpot", credentials={"access_token": "pat-demo"})
    sync = hubspot.syncs.get(object_name="companies")
    out.object_sync = sync.pk
    run = SyncRun.all_orgs.create(
        organization=org, sync=sync, status="succeeded", fetched=12, created=11, failed=1, started_at=now,
        finished_at=now,
    )  # fmt: skip
    SyncRecordError.all_orgs.create(
        organization=org, run=run, object_name="companies", external_id="4242", field="employees",
        reason="'lots' is not a whole number",
    )  # fmt: skip
    from health.models import Scorecard

    out.scorecard = Scorecard.all_orgs.filter(organization=org).order_by("pk").first().pk
    refresh_current_arr(org)
    # The work queue: CTAs with tasks for the CSM (one overdue, one snoozed) and one the leader's team sees.
    from playbooks.ctas import TaskTemplate, open_or_update_cta, snooze

    plays = [("risk", "health_red", -2), ("lifecycle", "renewal_prep", 5), ("expansion", "seats_over_licence", None)]
    for account, (kind, reason, due) in zip(accounts, plays, strict=False):
        cta, _ = open_or_update_cta(
            account=account, type=kind, reason=reason, owner=out.users["csm"], due_in_days=due,
            tasks=[TaskTemplate("Call the champion", 1), TaskTemplate("Agree a recovery plan", 7)],
        )  # fmt: skip
    snooze(cta, until=today + dt.timedelta(days=10), reason="customer_unavailable")
    # Account 360's "Recently closed" and the email-template admin pages (with a preview and an unsubscribe link).
    from playbooks.ctas import complete
    from playbooks.emails import unsubscribe_token
    from playbooks.models import EmailTemplate

    done, _ = open_or_update_cta(account=red, type="activity", reason="follow_up", owner=out.users["csm"],
                                 tasks=[TaskTemplate("Send the notes", 0)])  # fmt: skip
    complete(done, outcome="resolved", note="Notes sent and acknowledged")
    out.email_template = EmailTemplate.all_orgs.create(
        organization=org, name="Renewal heads-up", subject="{{ account.name }} renews on {{ renewal.date }}",
        body="Hi {{ contact.first_name|default:\"there\" }},\n\nYour renewal is on {{ renewal.date|date:\"j F Y\" }}."
        "\n\n{{ csm.name }}",
    ).pk  # fmt: skip
    from accounts.models import Contact

    contact = Contact.all_orgs.filter(organization=org, account=red).order_by("pk").first()
    out.unsubscribe_token = unsubscribe_token(contact)
    # Feature requests linked across accounts, a ticket carrying the bug's key, the tracker hook and its log.
    from feedback.requests import change_status, create_request, link_account, merge_requests
    from health import inbound
    from health.models import InboundDelivery

    bug = create_request(org, title="Usage report times out", type="bug", product_area="Reporting",
                         external_issue_key="PROD-233", description="Large workspaces see a timeout.")  # fmt: skip
    for account, importance in zip(accounts[:4], ("critical", "high", "medium", "low"), strict=False):
        link_account(bug, account, requested_by=out.users["csm"], importance=importance, comment="Raised in the QBR")
    change_status(bug, "planned", by=out.users["admin"])
    sso = create_request(org, title="SSO with Okta", product_area="Security")
    link_account(sso, accounts[4], requested_by=out.users["leader"], blocked_deal="OPP-20431")
    duplicate = create_request(org, title="Okta login", product_area="Security")
    link_account(duplicate, red, requested_by=out.users["csm"])
    merge_requests(duplicate, sso)
    out.feature_request = bug.pk
    from health.models import Ticket

    Ticket.all_orgs.create(organization=org, account=red, external_id="ZD-1001", subject="Report never loads",
                           opened_at=now - dt.timedelta(days=3), priority="P2", issue_key="PROD-233")  # fmt: skip
    inbound.enable_hook(org.pk, "tracker")
    InboundDelivery.all_orgs.create(organization=org, source="tracker", outcome="refused", status_code=401,
                                    reason="Unsigned request.")  # fmt: skip
    InboundDelivery.all_orgs.create(organization=org, source="tracker", outcome="applied", status_code=200,
                                    reference="PROD-233", changed=1)  # fmt: skip
    # The playbook editor: an inactive playbook with an email and a CTA with tasks (its preview lists accounts).
    from playbooks.models import Playbook

    out.playbook = Playbook.all_orgs.create(
        organization=org, name="Renewal prep", trigger="renewal_due", trigger_params={"days": 400},
        actions=[
            {"kind": "open_cta", "type": "lifecycle", "reason": "renewal_prep",
             "tasks": [{"title": "Review usage", "due_in_days": 3}, {"title": "Book the call", "due_in_days": 7}]},
            {"kind": "send_email", "template": out.email_template, "roles": ["champion"]},
        ],
    ).pk  # fmt: skip
    # Drafts (issue 14): a draft of that playbook and of a segment, for their version pages (diff, preview).
    from accounts import segment_drafts
    from accounts.models import Segment
    from playbooks import drafts as playbook_drafts

    playbook_drafts.create_draft(
        Playbook.all_orgs.get(pk=out.playbook), {"cooldown_days": 14}, user=None, note="Calmer"
    )
    segment = Segment.all_orgs.create(
        organization=org, name="Enterprise", rules={"conditions": [{"field": "arr", "op": "gte", "value": "100000"}]}
    )
    out.segment = segment.pk
    segment_drafts.create_draft(segment, {"rules": {"conditions": []}}, user=None, note="Everyone")
    # Onboarding (issue 15): projects on time, late, running and stalled, for the time-to-value report.
    from accounts.models import SegmentMembership
    from tests.ttv_helpers import make_project

    day = today - dt.timedelta(days=120)
    make_project(accounts[0], kickoff=day, target=day + dt.timedelta(days=60), go_live=day + dt.timedelta(days=50),
                 first_value=day + dt.timedelta(days=80))  # fmt: skip
    make_project(accounts[1], kickoff=day, target=day + dt.timedelta(days=40), go_live=day + dt.timedelta(days=70))
    make_project(accounts[2], kickoff=today - dt.timedelta(days=30), target=today + dt.timedelta(days=30),
                 milestones=[{"key": "import", "name": "Data import", "due_on": today - dt.timedelta(days=3),
                              "stalled_on": today - dt.timedelta(days=2)}])  # fmt: skip
    SegmentMembership.all_orgs.create(organization=org, segment=segment, account=accounts[0], entered_at=now)
    return out
