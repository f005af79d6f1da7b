"""Every API resource runs the isolation suite of ``tests/isolation.py`` (one line per resource)."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import Invitation, Segment, WriteKey
from cs_platform.jobs import create_job
from playbooks.models import ChatChannel, WebhookEndpoint
from playbooks.services import generate_secret
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
from .isolation import IsolationCase, IsolationSuite
from .renewal_factories import RenewalTargetFactory, contract_with_lines, renewal_for
from .signal_factories import (
    CsmPulseFactory,
    HealthOverrideFactory,
    HealthScoreFactory,
    InvoiceFactory,
    TicketFactory,
    UsageMetricFactory,
)


def connection(org: Any) -> Any:
    from integrations.services import create_connection

    n = org.pk * 1000 + __import__("integrations.models", fromlist=["Connection"]).Connection.all_orgs.count()
    return create_connection(org, kind="hubspot", name=f"HubSpot {n}", credentials={"access_token": "pat-x"})


def integration_sync(org: Any) -> Any:
    from integrations.models import ObjectSync

    return ObjectSync.all_orgs.get(connection=connection(org), object_name="companies")


def sync_run(org: Any) -> Any:
    from integrations.models import SyncRun

    sync = integration_sync(org)
    return SyncRun.all_orgs.create(organization=org, sync=sync)


def email_capture_of(org: Any) -> Any:
    from integrations.email_capture import ensure_capture

    return ensure_capture(org)


def captured_email(org: Any) -> Any:
    from django.utils import timezone

    from integrations.models import CapturedEmail

    n = CapturedEmail.all_orgs.count()
    return CapturedEmail.all_orgs.create(
        organization=org, message_id=f"<m{n}@x.example>", sent_at=timezone.now(), status="unmatched"
    )


def account(org: Any) -> int:
    return AccountFactory(organization=org).pk


def member_email(org: Any) -> str:
    return MembershipFactory(organization=org).user.email


def contract_body(org: Any) -> dict[str, Any]:
    line = {"product": ProductFactory(organization=org).pk, "quantity": "2", "annual_unit_price": "100.00"}
    return {"account": account(org), "number": "CT-NEW", "start_date": "2026-01-01", "end_date": "2026-12-31",
            "lines": [line]}  # fmt: skip


def scorecard(org: Any) -> Any:
    from health.defaults import DEFAULT_SCORECARD
    from health.models import Scorecard
    from health.services import save_scorecard_version

    card = Scorecard.all_orgs.create(organization=org, name=f"Card {Scorecard.all_orgs.count()}", position=5)
    save_scorecard_version(card, DEFAULT_SCORECARD, user=None, note="test")
    return card


def scorecard_body(org: Any) -> dict[str, Any]:
    from accounts.models import Segment
    from health.defaults import DEFAULT_SCORECARD

    segment = Segment.all_orgs.create(organization=org, name=f"Seg {Segment.all_orgs.count()}", rules={})
    return {"name": "Onboarding", "segment": segment.pk, "position": 1, "definition": DEFAULT_SCORECARD}


def invitation(org: Any) -> Any:
    import datetime as dt
    import secrets

    from django.utils import timezone

    return Invitation.all_orgs.create(
        organization=org, email=f"{secrets.token_hex(4)}@example.com", role="csm", token_hash=secrets.token_hex(32),
        expires_at=timezone.now() + dt.timedelta(days=7),
    )  # fmt: skip


def make_cta(org: Any) -> Any:
    from playbooks.ctas import open_or_update_cta

    return open_or_update_cta(account=AccountFactory(organization=org), type="risk", reason="health_red")[0]


def playbook_body(org: Any) -> dict[str, Any]:
    return {"name": "Red accounts", "trigger": "health_color", "trigger_params": {"colors": ["red"]},
            "actions": [{"kind": "open_cta", "type": "risk", "reason": "health_red"}]}  # fmt: skip


def playbook(org: Any) -> Any:
    from playbooks.models import Playbook

    return Playbook.all_orgs.create(organization=org, **{**playbook_body(org), "name": "Existing"})


def risk_reason(org: Any) -> int:
    from playbooks.models import CtaReason

    return CtaReason.objects.for_org(org).get(type__key="risk", key="health_red").pk


def make_task(org: Any) -> Any:
    return make_cta(org).tasks.create(organization=org, title="Call the champion")


def inbox_user(org: Any) -> Any:
    """The member whose notifications the suite reads: the organization's first admin (made when missing)."""
    from accounts.models import Membership

    membership = Membership.all_orgs.filter(organization=org, role="admin").order_by("pk").first()
    return membership.user if membership else MembershipFactory(organization=org, role="admin").user


def make_notification(org: Any) -> Any:
    from playbooks.models import Notification

    return Notification.all_orgs.create(organization=org, user=inbox_user(org), message="A CTA for you")


def make_feature_request(org: Any) -> Any:
    from feedback.requests import create_request, link_account

    fr = create_request(org, title="Offline mode", external_issue_key="PROD-1")
    link_account(fr, AccountFactory(organization=org))
    return fr


def cta_type(org: Any) -> Any:
    from playbooks.cta_admin import add_cta_type
    from playbooks.models import CtaType

    return add_cta_type(org, f"Custom {CtaType.all_orgs.count()}")


def email_template(org: Any) -> Any:
    from playbooks.models import EmailTemplate

    return EmailTemplate.all_orgs.create(
        organization=org, name=f"Template {EmailTemplate.all_orgs.count()}", subject="Hi", body="Hello"
    )


def survey(org: Any) -> Any:
    from .survey_factories import make_survey

    return make_survey(org)


def survey_send(org: Any) -> Any:
    from feedback.models import SurveySend

    return SurveySend.all_orgs.create(organization=org, survey=survey(org), account=AccountFactory(organization=org))


def survey_response(org: Any) -> Any:
    from feedback.models import SurveyResponse

    return SurveyResponse.all_orgs.create(organization=org, account=AccountFactory(organization=org), kind="nps",
                                          score=9, external_id=f"SR-{org.pk}-{SurveyResponse.all_orgs.count()}",
                                          responded_at="2026-11-02T10:00:00Z")  # fmt: skip


def survey_body(org: Any) -> dict[str, Any]:
    return {"name": "Quarterly NPS", "kind": "nps", "question": "How likely are you to recommend us?",
            "email_subject": "A quick question", "email_body": "Hi {{ contact.first_name }}"}  # fmt: skip


def audit_entry(org: Any) -> Any:
    from cs_platform.audit import record_audit

    return record_audit(org.pk, "scorecard.published", subject_type="scorecard", subject_id=1, note="test")


def acquisition_cost(org: Any) -> Any:
    from value.models import AcquisitionCost

    return AcquisitionCost.all_orgs.create(organization=org, account=AccountFactory(organization=org),
                                           acquisition_cost="5000.00")  # fmt: skip


def business_review(org: Any) -> Any:
    from value.models import BusinessReview

    return BusinessReview.all_orgs.create(organization=org, account=AccountFactory(organization=org),
                                          period_start="2026-07-01", period_end="2026-09-30")  # fmt: skip


def import_run(org: Any) -> Any:
    return create_job(organization_id=org.pk, kind="import_csv", params={"kind": "accounts"})


def onboarding_project(org: Any) -> Any:
    from accounts.services import Actor
    from value.onboarding import start_project

    return start_project(AccountFactory(organization=org), by=Actor(organization=org, role="admin"))


def onboarding_template(org: Any) -> Any:
    from value.models import OnboardingTemplate
    from value.onboarding import DEFAULT_PHASES

    return OnboardingTemplate.all_orgs.create(
        organization=org, name=f"Template {OnboardingTemplate.all_orgs.count()}", phases=DEFAULT_PHASES
    )


def handoff(org: Any) -> Any:
    from value.models import Handoff

    return Handoff.all_orgs.create(organization=org, account=AccountFactory(organization=org))


def handoff_body(org: Any) -> dict[str, Any]:
    return {"account": account(org), "go_live_target": "2027-01-01",
            "success_measures": [{"title": "Backlog", "baseline": "1200", "target": "300"}],
            "stakeholders": [{"name": "Dana", "email": "dana@client.example", "role": "champion"}]}  # fmt: skip


def template_body(org: Any) -> dict[str, Any]:
    from value.onboarding import DEFAULT_PHASES

    return {"name": "Enterprise onboarding", "phases": DEFAULT_PHASES}


def onboarding_milestone(org: Any) -> Any:
    return onboarding_project(org).milestones.first()


def bare_project(org: Any) -> int:
    """A project without milestones: the create test counts the one milestone the POST adds."""
    from value.models import OnboardingProject

    return OnboardingProject.all_orgs.create(organization=org, account=AccountFactory(organization=org), name="P").pk


CASES = [
    IsolationCase("accounts", make=lambda o: AccountFactory(organization=o), payload=lambda o: {"name": "New Co"},
                  foreign={"parent": account, "owner": member_email}),
    IsolationCase("contacts", make=lambda o: ContactFactory(account__organization=o),
                  payload=lambda o: {"account": account(o), "name": "Jane Roe"}, foreign={"account": account}),
    IsolationCase("products", make=lambda o: ProductFactory(organization=o),
                  payload=lambda o: {"sku": "NEW-SKU", "name": "New product"}),
    IsolationCase("contracts", make=lambda o: ContractLineFactory(contract__account__organization=o).contract,
                  payload=contract_body,
                  foreign={"account": account, "lines.0.product": lambda o: ProductFactory(organization=o).pk}),
    IsolationCase("activities", make=lambda o: ActivityFactory(account__organization=o),
                  payload=lambda o: {"account": account(o), "type": "call", "occurred_at": "2026-11-02T10:00:00Z"},
                  foreign={"account": account, "contacts": lambda o: [ContactFactory(account__organization=o).pk],
                           "author": member_email}, patch={"summary": "changed"}),
    IsolationCase("teams", make=lambda o: TeamFactory(organization=o), payload=lambda o: {"name": "New team"},
                  foreign={"manager": member_email, "members": lambda o: [member_email(o)]}),
    IsolationCase("webhooks", make=lambda o: WebhookEndpoint.all_orgs.create(organization=o, url="https://example.com/h",
                  event_types=["account.created"], secret=generate_secret()),
                  payload=lambda o: {"url": "https://example.com/hook", "event_types": ["account.created"]}),
    IsolationCase("chat-channels", make=lambda o: ChatChannel.all_orgs.create(organization=o, kind="slack",
                  name="#cs", webhook_url="https://hooks.example.com/services/T/B/x"),
                  payload=lambda o: {"kind": "teams", "name": "CS team", "webhook_url": "https://hooks.example.com/w"},
                  patch={"name": "changed"}),
    IsolationCase("segments", make=lambda o: Segment.all_orgs.create(organization=o, name="Enterprise EMEA"),
                  payload=lambda o: {"name": "Big", "rules": {"match": "all", "conditions": [
                      {"field": "arr", "op": "gte", "value": "100000"}]}},
                  patch={"description": "changed"}),
    IsolationCase("playbooks", make=playbook, payload=playbook_body,
                  foreign={"segment": lambda o: Segment.all_orgs.create(organization=o, name="Seg").pk},
                  patch={"description": "changed"}),
    IsolationCase("users", make=lambda o: MembershipFactory(organization=o), create_status=202, creates=Invitation,
                  payload=lambda o: {"email": "new.member@example.com", "role": "csm"},
                  foreign={"team": lambda o: TeamFactory(organization=o).pk}, patch={"role": "viewer"}),
    IsolationCase("invitations", make=invitation, payload=lambda o: {"email": "new.member@example.com", "role": "csm"},
                  foreign={"team": lambda o: TeamFactory(organization=o).pk}, patch={"role": "viewer"}),
    IsolationCase("usage-metrics", make=lambda o: UsageMetricFactory(account__organization=o),
                  payload=lambda o: {"account": account(o), "date": "2026-11-02", "metric": "events", "value": "3"},
                  read_only=True),
    IsolationCase("tickets", make=lambda o: TicketFactory(account__organization=o),
                  payload=lambda o: {"account": account(o), "external_id": "TK-NEW", "opened_at": "2026-11-02T09:00Z"},
                  foreign={"account": account}, patch={"subject": "changed"}),
    IsolationCase("invoices", make=lambda o: InvoiceFactory(account__organization=o),
                  payload=lambda o: {"account": account(o), "external_id": "INV-NEW", "due_date": "2026-11-30",
                                     "amount": "990.00"}, foreign={"account": account}, patch={"amount": "1.00"}),
    IsolationCase("imports", make=import_run, create_status=202,
                  payload=lambda o: {"kind": "accounts", "content": "external_id,name\nI-1,Co\n", "dry_run": True}),
    IsolationCase("renewals", make=lambda o: renewal_for(contract_with_lines(o)),
                  payload=lambda o: {"contract": contract_with_lines(o).pk, "forecast_category": "commit"},
                  foreign={"contract": lambda o: contract_with_lines(o).pk, "owner": member_email},
                  patch={"notes": "changed"}),
    IsolationCase("churn-reasons", make=lambda o: ChurnReason.all_orgs.create(organization=o, code="custom", label="C"),
                  payload=lambda o: {"code": "new_reason", "label": "New reason", "avoidable": False}),
    IsolationCase("renewal-targets", make=lambda o: RenewalTargetFactory(organization=o),
                  payload=lambda o: {"quarter_start": "2031-01-01", "target_arr": "5000.00"},
                  patch={"target_arr": "1.00"}),
    IsolationCase("health-scores", make=lambda o: HealthScoreFactory(account__organization=o),
                  payload=lambda o: {"account": account(o), "score": "50.0"}, read_only=True),
    IsolationCase("health-overrides", make=lambda o: HealthOverrideFactory(account__organization=o),
                  payload=lambda o: {"account": account(o), "color": "red", "reason_code": "other", "reason": "x"},
                  foreign={"account": account}, patch={"reason": "changed"}),
    IsolationCase("csm-pulses", make=lambda o: CsmPulseFactory(account__organization=o),
                  payload=lambda o: {"account": account(o), "color": "green", "reason_codes": ["goals_met"]},
                  foreign={"account": account}, patch={"note": "changed"}),
    IsolationCase("scorecards", make=scorecard, payload=scorecard_body,
                  foreign={"segment": lambda o: scorecard_body(o)["segment"]}, patch={"name": "changed"}),
    IsolationCase("write-keys", make=lambda o: WriteKey.issue(organization=o, name="prod")[0],
                  payload=lambda o: {"name": "New key"}),
    IsolationCase("ctas", make=make_cta,
                  payload=lambda o: {"account": account(o), "type": "risk", "reason": risk_reason(o), "title": "Call"},
                  foreign={"account": account, "reason": risk_reason, "owner": member_email},
                  patch={"title": "changed"}),
    IsolationCase("tasks", make=make_task, payload=lambda o: {"cta": make_cta(o).pk, "title": "Send the deck"},
                  foreign={"cta": lambda o: make_cta(o).pk, "assignee": member_email}, patch={"title": "changed"}),
    IsolationCase("surveys", make=survey, payload=survey_body, patch={"question": "changed?"}),
    IsolationCase("survey-sends", make=survey_send,
                  payload=lambda o: {"survey": survey(o).pk, "account": account(o), "next_run_at": "2031-01-01T09:00Z"},
                  foreign={"survey": lambda o: survey(o).pk, "account": account,
                           "segment": lambda o: Segment.all_orgs.create(organization=o, name="S").pk}),
    IsolationCase("survey-responses", make=survey_response,
                  payload=lambda o: {"account": account(o), "kind": "nps", "score": 7, "external_id": "SR-NEW",
                                     "responded_at": "2026-11-02T10:00:00Z"},
                  foreign={"account": account, "contact": lambda o: ContactFactory(account__organization=o).pk},
                  patch={"comment": "changed"}),
    IsolationCase("notifications", make=make_notification, payload=lambda o: {"message": "Hello"}, read_only=True,
                  key_user=inbox_user),
    IsolationCase("feature-requests", make=make_feature_request, payload=lambda o: {"title": "SSO", "type": "bug"},
                  patch={"title": "changed"}),
    IsolationCase("cta-types", make=cta_type, payload=lambda o: {"label": "Partner"}, patch={"label": "changed"}),
    IsolationCase("email-templates", make=email_template, payload=lambda o: {
                  "name": "Check-in", "subject": "Hi {{ account.name }}", "body": "Hello {{ contact.first_name }}"},
                  patch={"subject": "changed"}),
    IsolationCase("audit-log", make=audit_entry, payload=lambda o: {"note": "mine"}, read_only=True),
    IsolationCase("acquisition-costs", make=acquisition_cost,
                  payload=lambda o: {"account": account(o), "acquisition_cost": "1200.00", "onboarding_cost": "300.00"},
                  foreign={"account": account}, patch={"notes": "changed"}),
    IsolationCase("business-reviews", make=business_review, payload=lambda o: {"account": account(o), "kind": "qbr"},
                  foreign={"account": account}),
    IsolationCase("handoffs", make=handoff, payload=handoff_body, foreign={"account": account},
                  patch={"commercial_notes": "changed"}),
    IsolationCase("onboarding-templates", make=onboarding_template, payload=template_body,
                  patch={"description": "changed"}),
    IsolationCase("onboarding-projects", make=onboarding_project, payload=lambda o: {"account": account(o)},
                  foreign={"account": account, "template": lambda o: onboarding_template(o).pk, "owner": member_email},
                  patch={"name": "changed"}),
    IsolationCase("onboarding-milestones", make=onboarding_milestone,
                  payload=lambda o: {"project": bare_project(o), "key": "extra", "name": "Extra step"},
                  foreign={"project": bare_project, "owner": member_email},
                  patch={"notes": "changed"}),
    IsolationCase("integrations", make=connection,
                  payload=lambda o: {"kind": "hubspot", "name": "HubSpot EU", "credentials": {"access_token": "pat-y"}},
                  patch={"name": "changed"}),
    IsolationCase("integration-syncs",
                  make=integration_sync,
                  payload=lambda o: {"connection": _bare_connection(o).pk, "object_name": "companies"},
                  foreign={"connection": lambda o: _bare_connection(o).pk}, patch={"interval_minutes": 30}),
    IsolationCase("sync-runs", make=sync_run, payload=lambda o: {"mode": "sync"}, read_only=True),
    IsolationCase("email-captures", make=email_capture_of, payload=lambda o: {"never_capture_domains": ["acme.test"]},
                  patch={"enabled": False}),
    IsolationCase("captured-emails", make=captured_email, payload=lambda o: {"subject": "x"}, read_only=True),
]  # fmt: skip


def _bare_connection(org: Any) -> Any:
    """A connection whose object syncs were removed (so one can be added through the API)."""
    made = connection(org)
    made.syncs.all().delete()
    return made


# Routes nested under one scorecard (``scorecards/{scorecard_id}/backtests/``, ``…/suggestion/``) cannot be
# addressed by the flat suite above; their isolation cases are in tests/test_api_backtests.py
# (test_backtest_isolation_routes_stay_in_their_organization: foreign scorecard 404 on every route and method,
# foreign backtest 404 under one's own scorecard, foreign version id 400, never listed).


@pytest.mark.django_db
class TestIsolation(IsolationSuite):
    cases = CASES


def test_every_resource_runs_the_isolation_suite():
    """A new org-scoped resource without an IsolationCase above fails here."""
    from drf_spectacular.generators import EndpointEnumerator

    from cs_platform.api.viewsets import OrgScopedViewSet

    resources = {
        path.split("/")[3]
        for path, _regex, method, view in EndpointEnumerator().get_api_endpoints()
        if path.startswith("/api/v1/") and issubclass(getattr(view, "cls", object), OrgScopedViewSet)
    }
    assert resources == {case.resource for case in CASES}


@pytest.mark.django_db
def test_segment_members_and_previews_stay_in_their_organization(api, org, other_org):
    """The segments' extra actions: another organization's segment is a 404 (members, size); its accounts
    are never members, sampled or counted."""
    from decimal import Decimal

    from accounts.models import Account
    from accounts.segment_membership import refresh_memberships

    from .factories import AccountFactory

    rules = {"conditions": [{"field": "arr", "op": "gte", "value": "1"}]}
    mine = Segment.all_orgs.create(organization=org, name="Paying", rules=rules)
    theirs = Segment.all_orgs.create(organization=other_org, name="Paying", rules=rules)
    for o in (org, other_org):
        Account.all_orgs.filter(pk=AccountFactory(organization=o).pk).update(arr=Decimal("10"))
        refresh_memberships(o.pk)
    client = api(org, "admin")
    for suffix in ("members/", "size/"):
        assert client.get(f"/api/v1/segments/{theirs.pk}/{suffix}").status_code == 404
    members = client.get(f"/api/v1/segments/{mine.pk}/members/").json()["results"]
    assert [row["account"] for row in members] == list(Account.objects.for_org(org).values_list("pk", flat=True))
    preview = client.post("/api/v1/segments/preview/", {"rules": rules}, format="json").json()
    assert preview["accounts"] == 1 and [row["id"] for row in preview["sample"]] == [members[0]["account"]]


@pytest.mark.django_db
def test_scorecard_versions_stay_in_their_organization(api, org, other_org, charlie):
    """The nested versions of a scorecard (drafts): another organization's scorecard or version is a 404 on
    every route, exactly like one that does not exist, and nothing of it changes."""
    from cs_platform.models import AuditEntry
    from health import drafts
    from health.models import Scorecard

    theirs = Scorecard.all_orgs.get(organization=other_org, is_default=True)
    draft = drafts.create_draft(theirs, theirs.current_version.definition, user=charlie, note="theirs")
    client = api(org, "admin")
    base = f"/api/v1/scorecards/{theirs.pk}/versions/"
    missing = "/api/v1/scorecards/999999/versions/"
    for url in (base, missing):
        assert client.get(url).status_code == 404
        assert client.post(url, {"definition": theirs.current_version.definition}, format="json").status_code == 404
        assert client.get(f"{url}{draft.number}/").status_code == 404
        assert client.get(f"{url}{draft.number}/diff/").status_code == 404
        assert client.patch(f"{url}{draft.number}/", {"note": "mine"}, format="json").status_code == 404
        assert client.post(f"{url}{draft.number}/preview/").status_code == 404
        assert client.post(f"{url}{draft.number}/publish/", {"note": "x"}, format="json").status_code == 404
    assert client.post(f"/api/v1/scorecards/{theirs.pk}/rollback/", {"note": "x"}, format="json").status_code == 404
    draft.refresh_from_db()
    assert draft.is_draft and draft.note == "theirs"
    assert not AuditEntry.all_orgs.filter(organization=other_org).exists()
    mine = Scorecard.all_orgs.get(organization=org, is_default=True)
    listed = client.get(f"/api/v1/scorecards/{mine.pk}/versions/").json()["results"]
    assert {v["scorecard"] for v in listed} == {mine.pk}
