"""List endpoints make a small, constant number of queries whatever the page holds (no N+1).

The pinned budgets live in ``tests/query_counts.json`` (NetBox convention): a change that adds a
query per row fails here, and a deliberate change of budget is a reviewed one-line diff.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Segment
from accounts.services import Actor
from renewals.models import ChurnReason

from .factories import (
    AccountFactory,
    ActivityFactory,
    ContactFactory,
    ContractLineFactory,
    MembershipFactory,
    ProductFactory,
    TeamFactory,
)
from .renewal_factories import RenewalTargetFactory, contract_with_lines, renewal_for
from .signal_factories import (
    CsmPulseFactory,
    HealthOverrideFactory,
    HealthScoreFactory,
    InvoiceFactory,
    TicketFactory,
    UsageMetricFactory,
)

pytestmark = pytest.mark.django_db
BUDGETS: dict[str, int] = json.loads((Path(__file__).with_name("query_counts.json")).read_text())


def build_business_reviews(org: Any, n: int, owner: Any) -> None:
    from value.models import BusinessReview

    for i in range(n):
        account = AccountFactory(organization=org, owner=owner)
        BusinessReview.all_orgs.create(
            organization=org, account=account, period_start="2026-07-01", period_end="2026-09-30", status="closed",
            created_by=owner, closed_by=owner, held_on="2026-10-10", summary=f"Review {i}",
        )  # fmt: skip


def build_accounts(org: Any, n: int, owner: Any) -> None:
    parent = AccountFactory(organization=org, owner=owner, tags=["vip"])
    AccountFactory.create_batch(n - 1, organization=org, owner=owner, parent=parent, tags=["vip"])


def build_contracts(org: Any, n: int, owner: Any) -> None:
    product = ProductFactory(organization=org)
    for line in ContractLineFactory.create_batch(n, contract__account__organization=org, product=product):
        ContractLineFactory(contract=line.contract, product=ProductFactory(organization=org))


def build_activities(org: Any, n: int, owner: Any) -> None:
    account = AccountFactory(organization=org)
    contact = ContactFactory(account=account)
    for activity in ActivityFactory.create_batch(n, account=account, organization=org, author=owner):
        activity.contacts.add(contact, through_defaults={"organization_id": org.pk})


def build_teams(org: Any, n: int, owner: Any) -> None:
    for team in TeamFactory.create_batch(n, organization=org, manager=owner):
        MembershipFactory(organization=org, team=team)


def build_webhooks(org: Any, n: int, owner: Any) -> None:
    from playbooks.models import WebhookEndpoint

    WebhookEndpoint.all_orgs.bulk_create(
        WebhookEndpoint(organization=org, url=f"https://example.com/{i}", event_types=["account.created"],
                        secret="s", created_by=owner)
        for i in range(n)
    )  # fmt: skip


def build_chat_channels(org: Any, n: int, owner: Any) -> None:
    from playbooks.models import ChatChannel

    for i in range(n):  # one by one: each URL is encrypted on save
        ChatChannel.all_orgs.create(organization=org, kind="slack", name=f"#c{n}-{i}", created_by=owner,
                                    webhook_url=f"https://hooks.example.com/services/{i}")  # fmt: skip


def build_connections(org: Any, n: int, owner: Any) -> None:
    from integrations.models import Connection
    from integrations.services import create_connection

    start = Connection.all_orgs.count()
    for i in range(n):
        create_connection(org, kind="hubspot", name=f"HubSpot {start + i}", credentials={"access_token": "t"})


def build_sync_runs(org: Any, n: int, owner: Any) -> None:
    from integrations.models import Connection, SyncRecordError, SyncRun

    build_connections(org, 1, owner)
    sync = Connection.all_orgs.filter(organization=org).order_by("-pk").first().syncs.get(object_name="companies")
    for _ in range(n):
        run = SyncRun.all_orgs.create(organization=org, sync=sync, status="succeeded")
        SyncRecordError.all_orgs.create(organization=org, run=run, object_name="companies", external_id="1",
                                        reason="x")  # fmt: skip


def build_captured_emails(org: Any, n: int, owner: Any) -> None:
    from django.utils import timezone

    from integrations.email_capture import ensure_capture
    from integrations.models import CapturedEmail

    ensure_capture(org)
    start = CapturedEmail.all_orgs.count()
    account = AccountFactory(organization=org)
    CapturedEmail.all_orgs.bulk_create(
        CapturedEmail(organization=org, message_id=f"<q{start + i}@x.example>", sent_at=timezone.now(),
                      status="matched", account=account, participants=[{"name": "", "address": "a@b.example",
                      "field": "from"}], attachment_names=["a.pdf"])
        for i in range(n)
    )  # fmt: skip


def build_write_keys(org: Any, n: int, owner: Any) -> None:
    from accounts.models import WriteKey

    for i in range(n):
        WriteKey.issue(organization=org, name=f"key {i}", created_by=owner)


def build_renewals(org: Any, n: int, owner: Any) -> None:
    from renewals.services import close_renewal

    actor = Actor(organization=org, role="admin", user=owner)
    for i in range(n):
        renewal = renewal_for(contract_with_lines(org, owner=owner))
        if i % 2:  # closed ones carry line changes, a successor and a churn reason
            close_renewal(renewal, outcome="churned", churn_reason="price", by=actor)


def build_health_scores(org: Any, n: int, owner: Any) -> None:
    HealthScoreFactory.create_batch(n, account__organization=org, account__owner=owner)


def build_scorecards(org: Any, n: int, owner: Any) -> None:
    from health.defaults import DEFAULT_SCORECARD
    from health.models import Scorecard
    from health.services import save_scorecard_version

    start = Scorecard.all_orgs.filter(organization=org).count()
    for i in range(n):
        card = Scorecard.all_orgs.create(organization=org, name=f"Card {start + i}", position=i)
        save_scorecard_version(card, DEFAULT_SCORECARD, user=owner, note="v1")
        save_scorecard_version(card, DEFAULT_SCORECARD, user=owner, note="v2")


def build_scorecard_versions(org: Any, n: int, owner: Any) -> None:
    """``n`` more versions of the default scorecard: published ones, each by ``owner``, and one rollback."""
    from health.defaults import DEFAULT_SCORECARD
    from health.drafts import rollback
    from health.models import Scorecard
    from health.services import save_scorecard_version

    card = Scorecard.all_orgs.get(organization=org, is_default=True)
    for _ in range(n - 1):
        save_scorecard_version(card, DEFAULT_SCORECARD, user=owner, note="again")
    rollback(card, user=owner, note="back")


def default_scorecard_versions(org: Any) -> str:
    from health.models import Scorecard

    return f"/api/v1/scorecards/{Scorecard.all_orgs.get(organization=org, is_default=True).pk}/versions/"


def build_audit_entries(org: Any, n: int, owner: Any) -> None:
    from cs_platform.audit import record_audit

    for i in range(n):
        record_audit(org.pk, "scorecard.published", subject_type="scorecard", subject_id=i, actor=owner, note="n")


def build_invitations(org: Any, n: int, owner: Any) -> None:
    from tests.test_api_isolation import invitation

    team = TeamFactory(organization=org)
    for _ in range(n):
        made = invitation(org)
        made.invited_by, made.team = owner, team
        made.save(update_fields=["invited_by", "team"])


def build_ctas(org: Any, n: int, owner: Any) -> None:
    from playbooks.ctas import TaskTemplate, open_or_update_cta

    for _ in range(n):
        account = AccountFactory(organization=org, owner=owner)
        open_or_update_cta(
            account=account, type="risk", reason="health_red", tasks=[TaskTemplate("a", 1), TaskTemplate("b")]
        )


def build_notifications(org: Any, n: int, owner: Any) -> None:
    from playbooks.models import Notification

    Notification.all_orgs.bulk_create(Notification(organization=org, user=owner, message=f"n{i}") for i in range(n))


def build_feature_requests(org: Any, n: int, owner: Any) -> None:
    from feedback.requests import create_request, link_account

    for i in range(n):
        fr = create_request(org, title=f"Request {i}", product_area="Reporting", by=owner)
        for _ in range(2):
            link_account(fr, AccountFactory(organization=org, owner=owner), requested_by=owner)


def build_cta_types(org: Any, n: int, owner: Any) -> None:
    from playbooks.cta_admin import add_cta_reason, add_cta_type
    from playbooks.models import CtaType

    start = CtaType.all_orgs.filter(organization=org).count()
    for i in range(n):
        add_cta_reason(add_cta_type(org, f"Type {start + i}"), "A reason")


def build_email_templates(org: Any, n: int, owner: Any) -> None:
    from playbooks.models import EmailTemplate

    start = EmailTemplate.all_orgs.filter(organization=org).count()
    EmailTemplate.all_orgs.bulk_create(
        EmailTemplate(organization=org, name=f"T{start + i}", subject="Hi", body="Hello", created_by=owner)
        for i in range(n)
    )


def build_surveys(org: Any, n: int, owner: Any) -> None:
    from tests.survey_factories import make_survey

    for _ in range(n):
        make_survey(org)


def build_survey_sends(org: Any, n: int, owner: Any) -> None:
    from feedback.models import SurveyInvitation, SurveySend
    from tests.survey_factories import make_survey

    survey = make_survey(org)
    for _ in range(n):
        account = AccountFactory(organization=org, owner=owner)
        send = SurveySend.all_orgs.create(organization=org, survey=survey, account=account)
        contact = ContactFactory(account=account)
        SurveyInvitation.all_orgs.create(organization=org, send=send, survey=survey, account=account, contact=contact,
                                         status="sent", scheduled_for="2026-11-01T09:00Z")  # fmt: skip


def build_acquisition_costs(org: Any, n: int, owner: Any) -> None:
    from value.models import AcquisitionCost

    segment = Segment.all_orgs.create(organization=org, name=f"Costed {n}")
    AcquisitionCost.all_orgs.create(organization=org, segment=segment, acquisition_cost=1)
    AcquisitionCost.all_orgs.bulk_create(
        AcquisitionCost(organization=org, account=AccountFactory(organization=org, owner=owner), acquisition_cost=i)
        for i in range(n)
    )


def build_survey_responses(org: Any, n: int, owner: Any) -> None:
    from feedback.models import SurveyResponse

    account = AccountFactory(organization=org, owner=owner)
    SurveyResponse.all_orgs.bulk_create(
        SurveyResponse(organization=org, account=account, kind="nps", score=i % 11, responded_at="2026-11-01T09:00Z")
        for i in range(n)
    )


def build_onboarding(org: Any, n: int, owner: Any) -> None:
    from value.onboarding import start_project

    actor = Actor(organization=org, role="admin")
    for _ in range(n):
        start_project(AccountFactory(organization=org, owner=owner), by=actor)


def build_handoffs(org: Any, n: int, owner: Any) -> None:
    from value.models import Handoff

    for account in AccountFactory.create_batch(n, organization=org, owner=owner):
        Handoff.all_orgs.create(organization=org, account=account, submitted_by=owner,
                                success_measures=[{"title": "Backlog", "target": "300"}])  # fmt: skip


def build_onboarding_templates(org: Any, n: int, owner: Any) -> None:
    from value.models import OnboardingTemplate
    from value.onboarding import DEFAULT_PHASES

    OnboardingTemplate.all_orgs.bulk_create(
        OnboardingTemplate(organization=org, name=f"T{n}-{i}", phases=DEFAULT_PHASES) for i in range(n)
    )


SCENARIOS = {
    # name: (url, query string, builder)
    "accounts:list": ("/api/v1/accounts/", {"owner": "me", "tag": "vip", "ordering": "-arr,name"}, build_accounts),
    "contacts:list": ("/api/v1/contacts/", {"ordering": "name"},
                      lambda o, n, u: ContactFactory.create_batch(n, account__organization=o)),
    "products:list": ("/api/v1/products/", {}, lambda o, n, u: ProductFactory.create_batch(n, organization=o)),
    "contracts:list": ("/api/v1/contracts/", {"status": "active", "ordering": "-end_date"}, build_contracts),
    "activities:list": ("/api/v1/activities/", {"type": "call"}, build_activities),
    "teams:list": ("/api/v1/teams/", {}, build_teams),
    "users:list": ("/api/v1/users/", {"ordering": "role"},
                   lambda o, n, u: MembershipFactory.create_batch(n, organization=o)),
    "usage-metrics:list": ("/api/v1/usage-metrics/", {"metric": ["events", "active_users"], "date_after": "2020-01-01"},
                           lambda o, n, u: UsageMetricFactory.create_batch(n, account__organization=o)),
    "tickets:list": ("/api/v1/tickets/", {"open": "true", "ordering": "priority"},
                     lambda o, n, u: TicketFactory.create_batch(n, account__organization=o)),
    "invoices:list": ("/api/v1/invoices/", {"paid": "false", "ordering": "-amount"},
                      lambda o, n, u: InvoiceFactory.create_batch(n, account__organization=o)),
    "webhooks:list": ("/api/v1/webhooks/", {"is_active": "true"}, build_webhooks),
    "chat-channels:list": ("/api/v1/chat-channels/", {"is_active": "true", "ordering": "name"}, build_chat_channels),
    "segments:list": ("/api/v1/segments/", {"ordering": "name"},
                      lambda o, n, u: Segment.all_orgs.bulk_create(
                          Segment(organization=o, name=f"S{n}-{i}", rules={}) for i in range(n))),
    "write-keys:list": ("/api/v1/write-keys/", {"ordering": "-created_at"}, build_write_keys),
    "integrations:list": ("/api/v1/integrations/", {"kind": "hubspot", "ordering": "name"}, build_connections),
    "integration-syncs:list": ("/api/v1/integration-syncs/", {"object_name": "companies"}, build_connections),
    "sync-runs:list": ("/api/v1/sync-runs/", {"status": "succeeded", "ordering": "-created_at"}, build_sync_runs),
    # email-captures has no scenario: one row per organization at most (its list is select_related, 4 queries).
    "captured-emails:list": ("/api/v1/captured-emails/", {"status": "matched", "ordering": "-sent_at"},
                             build_captured_emails),
    "invitations:list": ("/api/v1/invitations/", {"ordering": "-created_at"}, build_invitations),
    "renewals:list": ("/api/v1/renewals/", {"owner": "me", "due_after": "2020-01-01", "ordering": "-current_arr"},
                      build_renewals),
    "churn-reasons:list": ("/api/v1/churn-reasons/", {"ordering": "code"},
                           lambda o, n, u: ChurnReason.all_orgs.bulk_create(
                               ChurnReason(organization=o, code=f"r{n}-{i}", label="R") for i in range(n))),
    "renewal-targets:list": ("/api/v1/renewal-targets/", {},
                             lambda o, n, u: RenewalTargetFactory.create_batch(n, organization=o)),
    "health-scores:list": ("/api/v1/health-scores/", {"color": "yellow", "ordering": "-score", "owner": "me"},
                           build_health_scores),
    "health-overrides:list": ("/api/v1/health-overrides/", {"active": "true"},
                              lambda o, n, u: HealthOverrideFactory.create_batch(n, account__organization=o, author=u)),
    "csm-pulses:list": ("/api/v1/csm-pulses/", {"color": "yellow"},
                        lambda o, n, u: CsmPulseFactory.create_batch(n, account__organization=o, author=u)),
    "scorecards:list": ("/api/v1/scorecards/", {"is_active": "true"}, build_scorecards),
    "scorecard-versions:list": (default_scorecard_versions, {"ordering": "-published_at"}, build_scorecard_versions),
    "audit-log:list": ("/api/v1/audit-log/", {"action": "scorecard.published", "subject_type": "scorecard"},
                       build_audit_entries),
    "ctas:list": ("/api/v1/ctas/", {"owner": "me", "status": "open", "ordering": "-priority_score"}, build_ctas),
    "tasks:list": ("/api/v1/tasks/", {"assignee": "me", "done": "false", "ordering": "due_date"}, build_ctas),
    "notifications:list": ("/api/v1/notifications/", {"unread": "true"}, build_notifications),
    "feature-requests:list": ("/api/v1/feature-requests/", {"status": "new", "product_area": "reporting",
                                                            "merged": "false"}, build_feature_requests),
    "cta-types:list": ("/api/v1/cta-types/", {"is_active": "true", "ordering": "label"}, build_cta_types),
    "email-templates:list": ("/api/v1/email-templates/", {"is_active": "true"}, build_email_templates),
    "surveys:list": ("/api/v1/surveys/", {"kind": "nps"}, build_surveys),
    "survey-sends:list": ("/api/v1/survey-sends/", {"ordering": "-created_at"}, build_survey_sends),
    "survey-responses:list": ("/api/v1/survey-responses/", {"kind": "nps", "ordering": "-responded_at"},
                              build_survey_responses),
    "acquisition-costs:list": ("/api/v1/acquisition-costs/", {"owner": "account", "ordering": "-acquisition_cost"},
                               build_acquisition_costs),
    # The accounts behind a "know the details" figure: the figure (its own fixed queries) and one page query.
    "details-accounts:list": ("/api/v1/metrics/details/csm-coverage/accounts/", {"drill": "touch:low"},
                              lambda o, n, u: ContractLineFactory.create_batch(
                                  n, contract__account__organization=o, contract__account__owner=u)),
    "business-reviews:list": ("/api/v1/business-reviews/", {"status": "closed", "kind": "qbr",
                                                            "ordering": "-period_end"}, build_business_reviews),
    "handoffs:list": ("/api/v1/handoffs/", {"submitted": "false", "ordering": "-created_at"}, build_handoffs),
    "onboarding-templates:list": ("/api/v1/onboarding-templates/", {"ordering": "name"}, build_onboarding_templates),
    "onboarding-projects:list": ("/api/v1/onboarding-projects/", {"status": "active", "owner": "me"},
                                 build_onboarding),
    "onboarding-milestones:list": ("/api/v1/onboarding-milestones/", {"done": "false", "ordering": "due_on"},
                                   build_onboarding),
}  # fmt: skip
# Resources only admins may read; their scenario runs with a key bound to an admin user instead of a csm.
ADMIN_ONLY = {"write-keys:list", "invitations:list", "audit-log:list"}


def count_queries(client: Any, url: str, params: dict[str, Any]) -> tuple[int, list[str], int]:
    client.get(url, {**params, "page_size": 100})  # warm-up: the key's last_used_at write happens once
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, {**params, "page_size": 100})
    assert response.status_code == 200, response.json()
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries], response.json()["count"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_list_query_count_is_constant(name, org, alice, bob, api, django_assert_num_queries):
    url, params, build = SCENARIOS[name]
    url = url(org) if callable(url) else url  # a nested list: its parent's id
    user, role = (alice, "admin") if name in ADMIN_ONLY else (bob, "csm")
    client = api(org, role, user)  # a user-bound key: the heaviest auth path (key, then membership)
    build(org, 5, user)
    small, small_sql, small_count = count_queries(client, url, params)
    assert small == BUDGETS[name], f"{name}: {small} queries, budget {BUDGETS[name]}:\n" + "\n".join(small_sql)
    build(org, 55, user)
    with django_assert_num_queries(BUDGETS[name]):
        response = client.get(url, {**params, "page_size": 100})
    assert response.json()["count"] >= 60 > small_count >= 5


def test_budgets_cover_every_scenario():
    assert set(BUDGETS) == set(SCENARIOS)
