"""Inbound webhooks (issue 13 §4): the issue tracker's Jira-shaped "issue updated" and the helpdesk's tickets.

Acceptance: a signed Jira payload moves the linked request to shipped and the linked accounts' CSMs are
notified; a malformed, unsigned or wrongly signed one (or one for an unknown issue) is refused with its reason
and changes nothing. Every delivery is logged with its outcome."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import mail
from django.core.cache import cache

from cs_platform.events import dispatch
from cs_platform.models import DomainEvent
from feedback import requests as svc
from health import inbound
from health.models import InboundDelivery, InboundHook, Ticket
from playbooks.models import Notification

from .factories import AccountFactory

pytestmark = pytest.mark.django_db


def jira(key: str = "PROD-42", status: str = "Done", **extra: Any) -> dict[str, Any]:
    """The parts of Jira's ``jira:issue_updated`` webhook body that matter (the real one has many more)."""
    return {
        "timestamp": 1764921600000,
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Pat Product"},
        "issue": {
            "id": "10042",
            "self": "https://acme.atlassian.net/rest/api/2/issue/10042",
            "key": key,
            "fields": {"summary": "Offline mode", "status": {"name": status, "id": "10001"}},
        },
        "changelog": {"items": [{"field": "status", "fromString": "In Progress", "toString": status}]},
        **extra,
    }


def clear_budgets(org, source: str) -> None:
    cache.delete_many([f"retain:inbound:{org.pk}:{source}", f"retain:inbound:unverified-logged:{org.pk}:{source}",
                       *(f"retain:inbound:unverified:{org.pk}:{source}:{ip}" for ip in ADDRESSES)])  # fmt: skip


ADDRESSES = ["127.0.0.1", *(f"203.0.113.{n}" for n in range(1, 40))]


@pytest.fixture
def tracker(org):
    hook = inbound.enable_hook(org.pk, "tracker")
    clear_budgets(org, "tracker")
    yield hook
    clear_budgets(org, "tracker")


@pytest.fixture
def helpdesk(org):
    hook = inbound.enable_hook(org.pk, "helpdesk")
    clear_budgets(org, "helpdesk")
    yield hook
    clear_budgets(org, "helpdesk")


def post(client, org, source: str, body: Any, *, secret: str | None, header: str = "HTTP_X_HUB_SIGNATURE", raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    extra = {header: inbound.sign(secret, data)} if secret else {}
    return client.post(f"/hooks/{org.slug}/{source}/", data=data, content_type="application/json", **extra)


@pytest.fixture
def linked(org, bob, make_member):
    carol = make_member(org, "csm", first_name="Carol").user
    fr = svc.create_request(org, title="Offline mode", type="bug", external_issue_key="PROD-42")
    svc.link_account(fr, AccountFactory(organization=org, owner=bob))
    svc.link_account(fr, AccountFactory(organization=org, owner=carol))
    fr.status_changed_at = None
    return fr, carol


def test_signed_jira_payload_ships_the_request_and_notifies_the_csms(
    client, org, bob, tracker, linked, django_capture_on_commit_callbacks
):
    fr, carol = linked
    response = post(client, org, "tracker", jira(), secret=inbound.hook_secret(tracker))
    assert response.status_code == 200, response.json()
    assert response.json() == {"outcome": "applied", "issue": "PROD-42", "status": "shipped", "matched": 1,
                               "changed": [fr.pk]}  # fmt: skip
    fr.refresh_from_db()
    assert fr.status == "shipped"
    assert fr.external_issue_url == "https://acme.atlassian.net/browse/PROD-42"
    change = fr.changes.get()
    assert (change.source, change.from_status, change.to_status) == ("tracker", "new", "shipped")
    delivery = InboundDelivery.all_orgs.get()
    assert (delivery.outcome, delivery.status_code, delivery.reference, delivery.changed) == ("applied", 200,
                                                                                              "PROD-42", 1)  # fmt: skip

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        dispatch(org.pk)
    notified = set(Notification.all_orgs.filter(organization=org).values_list("user_id", flat=True))
    assert notified == {bob.pk, carol.pk}
    assert {m.to[0] for m in mail.outbox} == {bob.email, carol.email}
    assert all("Shipped" in m.subject for m in mail.outbox)

    # The same update again (Jira retries): accepted, nothing changes, nobody is notified twice.
    again = post(client, org, "tracker", jira(), secret=inbound.hook_secret(tracker))
    assert again.status_code == 200 and again.json()["outcome"] == "ignored" and again.json()["changed"] == []
    assert DomainEvent.all_orgs.filter(name="feature_request.status_changed").count() == 1


REFUSALS = [
    # (case, body, raw bytes or None, signed how, expected status, words of the reason)
    ("unsigned", jira(), None, "none", 401, "Unsigned"),
    ("wrong signature", jira(), None, "wrong", 401, "does not match"),
    ("malformed signature header", jira(), None, "garbage", 401, "sha256="),
    ("not JSON", None, b"{not json", "good", 400, "not valid JSON"),
    ("not an object", ["issue"], None, "good", 400, "JSON object"),
    ("no webhookEvent", {"issue": jira()["issue"]}, None, "good", 400, "webhookEvent"),
    ("another event", jira(webhookEvent="jira:issue_deleted"), None, "good", 422, "not handled"),
    ("no issue key", {**jira(), "issue": {"fields": {"status": {"name": "Done"}}}}, None, "good", 400, "issue.key"),
    ("malformed key", jira(key="PROD 42; DROP"), None, "good", 400, "issue.key"),
    ("no status", {**jira(), "issue": {"key": "PROD-42", "fields": {}}}, None, "good", 400, "status.name"),
    ("bad self", {**jira(), "issue": {**jira()["issue"], "self": "javascript:alert(1)"}}, None, "good", 400,
     "issue.self"),
    ("unknown issue", jira(key="PROD-999"), None, "good", 422, "No feature request is linked to issue PROD-999"),
    ("unmapped status", jira(status="Backlog"), None, "good", 422, "not mapped"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "raw", "signed", "status", "reason"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_bad_tracker_payload_is_refused_with_its_reason_and_changes_nothing(
    client, org, tracker, linked, case, body, raw, signed, status, reason
):
    fr, _carol = linked
    data = raw if raw is not None else json.dumps(body).encode()
    extra = {}
    if signed == "good":
        extra = {"HTTP_X_HUB_SIGNATURE": inbound.sign(inbound.hook_secret(tracker), data)}
    elif signed == "wrong":
        extra = {"HTTP_X_HUB_SIGNATURE": inbound.sign("whin_not-the-secret", data)}
    elif signed == "garbage":
        extra = {"HTTP_X_HUB_SIGNATURE": "md5 deadbeef"}
    response = client.post(f"/hooks/{org.slug}/tracker/", data=data, content_type="application/json", **extra)
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert reason in response.json()["detail"]
    fr.refresh_from_db()
    assert fr.status == "new" and fr.external_issue_url == ""
    assert not fr.changes.exists()
    assert not DomainEvent.all_orgs.filter(name="feature_request.status_changed").exists()
    delivery = InboundDelivery.all_orgs.get()
    assert (delivery.outcome, delivery.status_code) == ("refused", status)
    assert reason in delivery.reason


def test_a_signed_body_altered_in_transit_is_refused(client, org, tracker, linked):
    signed_for = json.dumps(jira(status="In Progress")).encode()
    sent = json.dumps(jira(status="Done")).encode()
    response = client.post(f"/hooks/{org.slug}/tracker/", data=sent, content_type="application/json",
                           HTTP_X_HUB_SIGNATURE=inbound.sign(inbound.hook_secret(tracker), signed_for))  # fmt: skip
    assert response.status_code == 401
    assert linked[0].__class__.all_orgs.get(pk=linked[0].pk).status == "new"


def test_mapping_is_per_organization_and_the_retain_header_works(client, org, tracker, linked):
    tracker.status_map = {"Shipped to prod": "shipped", "in progress": "planned"}
    tracker.save()
    response = post(client, org, "tracker", jira(status="In Progress"), secret=inbound.hook_secret(tracker),
                    header="HTTP_X_RETAIN_SIGNATURE")  # fmt: skip
    assert response.status_code == 200 and response.json()["status"] == "planned"
    assert post(client, org, "tracker", jira(status="Done"), secret=inbound.hook_secret(tracker)).status_code == 422


def test_the_secret_is_derived_never_stored_and_rotation_revokes_it(client, org, tracker, linked):
    secret = inbound.hook_secret(tracker)
    assert secret not in json.dumps(list(InboundHook.all_orgs.values()), default=str)
    new = inbound.rotate_secret(tracker)
    assert new != secret
    assert post(client, org, "tracker", jira(), secret=secret).status_code == 401
    assert post(client, org, "tracker", jira(), secret=new).status_code == 200


def test_another_organizations_secret_or_url_does_nothing(client, org, other_org, tracker, linked):
    theirs = inbound.enable_hook(other_org.pk, "tracker")
    # Their secret on our URL: refused. Our (valid) payload on their URL: their org has no such issue.
    assert post(client, org, "tracker", jira(), secret=inbound.hook_secret(theirs)).status_code == 401
    assert post(client, other_org, "tracker", jira(), secret=inbound.hook_secret(theirs)).status_code == 422
    linked[0].refresh_from_db()
    assert linked[0].status == "new"


def test_disabled_or_unknown_hooks_answer_404_and_only_post_is_allowed(client, org, tracker):
    assert client.get(f"/hooks/{org.slug}/tracker/").status_code == 405
    assert post(client, org, "helpdesk", {}, secret="x").status_code == 404  # not enabled
    assert client.post("/hooks/no-such-org/tracker/", data=b"{}", content_type="application/json").status_code == 404
    tracker.is_active = False
    tracker.save()
    assert post(client, org, "tracker", jira(), secret=inbound.hook_secret(tracker)).status_code == 404


def test_inbound_hooks_are_rate_limited(client, org, tracker, linked, settings):
    settings.INBOUND_HOOK_RATE = "2/min"
    secret = inbound.hook_secret(tracker)
    assert [post(client, org, "tracker", jira(), secret=secret).status_code for _ in range(2)] == [200, 200]
    refused = post(client, org, "tracker", jira(), secret=secret)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    post(client, org, "tracker", jira(), secret=secret)
    assert InboundDelivery.all_orgs.filter(outcome="throttled").count() == 1  # one row per window, not a flood


def test_an_oversized_body_is_refused(client, org, tracker):
    data = b'{"pad": "' + b"x" * (inbound.MAX_BODY_BYTES + 10) + b'"}'
    response = client.post(f"/hooks/{org.slug}/tracker/", data=data, content_type="application/json",
                           HTTP_X_HUB_SIGNATURE=inbound.sign(inbound.hook_secret(tracker), data))  # fmt: skip
    assert response.status_code == 413


@pytest.mark.parametrize("digest", ["é" * 64, "g" * 64, "ab" * 31, "ab" * 33])
def test_a_malformed_or_non_ascii_digest_is_a_401_not_a_500(client, org, tracker, linked, digest):
    data = json.dumps(jira()).encode()
    response = client.post(f"/hooks/{org.slug}/tracker/", data=data, content_type="application/json",
                           HTTP_X_HUB_SIGNATURE=f"sha256={digest}")  # fmt: skip
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "bad_signature"
    assert linked[0].__class__.all_orgs.get(pk=linked[0].pk).status == "new"


def test_a_body_over_djangos_upload_limit_is_a_json_413(client, org, tracker, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    data = json.dumps(jira()).encode()
    assert 100 < len(data) < inbound.MAX_BODY_BYTES
    response = client.post(f"/hooks/{org.slug}/tracker/", data=data, content_type="application/json",
                           HTTP_X_HUB_SIGNATURE=inbound.sign(inbound.hook_secret(tracker), data))  # fmt: skip
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


# --- Helpdesk -------------------------------------------------------------------------------------


def ticket(**changes: Any) -> dict[str, Any]:
    return {"ticket": {"id": "ZD-1001", "account_external_id": "ACME-1", "subject": "Report times out",
                       "priority": "P2", "status": "open", "opened_at": "2026-11-30T09:15:00Z",
                       "issue_key": "prod-42", **changes}}  # fmt: skip


def test_helpdesk_upsert_is_idempotent_and_the_ticket_shows_on_the_request(client, org, alice, helpdesk, linked):
    account = AccountFactory(organization=org, external_id="ACME-1", name="Acme Retail")
    secret = inbound.hook_secret(helpdesk)
    first = post(client, org, "helpdesk", ticket(), secret=secret)
    assert first.status_code == 201 and first.json()["outcome"] == "created"
    same = post(client, org, "helpdesk", ticket(), secret=secret)
    assert same.status_code == 200 and same.json()["outcome"] == "unchanged"
    solved = post(client, org, "helpdesk", ticket(status="solved", resolved_at="2026-12-01T10:00:00Z"), secret=secret)
    assert solved.status_code == 200 and solved.json()["outcome"] == "updated"
    row = Ticket.all_orgs.get(organization=org)
    assert (row.external_id, row.account_id, row.status, row.issue_key) == ("ZD-1001", account.pk, "solved", "PROD-42")
    assert [d.outcome for d in InboundDelivery.all_orgs.order_by("pk")] == ["applied", "ignored", "applied"]

    client.force_login(alice)
    page = client.get(f"/o/{org.slug}/voice/requests/{linked[0].pk}/")
    assert page.status_code == 200
    assert "ZD-1001" in page.content.decode() and "Report times out" in page.content.decode()


def test_an_out_of_order_ticket_delivery_is_ignored_as_stale_and_logged(client, org, alice, helpdesk):
    """The helpdesk sends "solved" (10:00) and, retried late, "open" (09:30): the older state must not win."""
    AccountFactory(organization=org, external_id="ACME-1")
    secret = inbound.hook_secret(helpdesk)
    opened = post(client, org, "helpdesk", ticket(updated_at="2026-12-01T09:00:00Z"), secret=secret)
    assert opened.status_code == 201
    solved = ticket(status="solved", resolved_at="2026-12-01T10:00:00Z", updated_at="2026-12-01T10:00:00Z")
    assert post(client, org, "helpdesk", solved, secret=secret).json()["outcome"] == "updated"
    late = post(client, org, "helpdesk", ticket(status="pending", updated_at="2026-12-01T09:30:00Z"), secret=secret)
    assert late.status_code == 200
    assert late.json() == {"outcome": "stale", "ticket": late.json()["ticket"], "id": "ZD-1001",
                           "updated_at": "2026-12-01T10:00:00Z"}  # fmt: skip
    row = Ticket.all_orgs.get(organization=org)
    assert row.status == "solved" and row.updated_at.isoformat() == "2026-12-01T10:00:00+00:00"
    # The same moment again (a retry of the newest) is not stale; a newer one applies.
    again = post(client, org, "helpdesk", solved, secret=secret)
    assert again.json()["outcome"] == "unchanged"
    reopened = post(client, org, "helpdesk", ticket(status="open", updated_at="2026-12-02T08:00:00+01:00"),
                    secret=secret)  # fmt: skip
    assert reopened.json()["outcome"] == "updated"
    row.refresh_from_db()
    assert row.status == "open" and row.updated_at.isoformat() == "2026-12-02T07:00:00+00:00"
    # Without updated_at a delivery is applied (last one wins) and keeps the stored moment.
    plain = post(client, org, "helpdesk", ticket(status="pending"), secret=secret)
    assert plain.json()["outcome"] == "updated"
    row.refresh_from_db()
    assert row.status == "pending" and row.updated_at.isoformat() == "2026-12-02T07:00:00+00:00"
    assert post(client, org, "helpdesk", ticket(updated_at="soon"), secret=secret).json()["errors"] == {
        "updated_at": "must be an ISO-8601 date-time such as 2026-11-02T09:00:00Z"
    }
    log = list(InboundDelivery.all_orgs.order_by("pk"))
    assert [d.outcome for d in log] == ["applied", "applied", "stale", "ignored", "applied", "applied", "refused"]
    assert log[2].changed == 0 and "older than the stored" in log[2].reason
    # Admin → Integrations shows it and filters by it.
    client.force_login(alice)
    page = client.get(f"/o/{org.slug}/admin/integrations/", {"outcome": "stale"}).content.decode()
    assert "Accepted, older than the stored ticket (ignored)" in page and "older than the stored" in page
    assert page.count("<tr><td") == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"nope": 1}, 400, "ticket"),
        (ticket(id=""), 400, "id"),
        (ticket(priority="urgent"), 400, "priority"),
        (ticket(opened_at="yesterday"), 400, "opened_at"),
        (ticket(extra="x"), 400, "extra"),
        (ticket(account_external_id="NOPE"), 422, "account_external_id"),
    ],
)
def test_a_bad_ticket_is_refused_with_its_field(client, org, helpdesk, body, status, field):
    AccountFactory(organization=org, external_id="ACME-1")
    response = post(client, org, "helpdesk", body, secret=inbound.hook_secret(helpdesk))
    assert response.status_code == status, response.json()
    assert field in response.json()["errors"]
    assert not Ticket.all_orgs.filter(organization=org).exists()
    assert InboundDelivery.all_orgs.get().outcome == "refused"


def test_unsigned_ticket_is_refused(client, org, helpdesk):
    AccountFactory(organization=org, external_id="ACME-1")
    assert post(client, org, "helpdesk", ticket(), secret=None).status_code == 401
    assert not Ticket.all_orgs.exists()


def test_the_log_keeps_the_newest_deliveries(client, org, tracker, linked, monkeypatch):
    monkeypatch.setattr(InboundDelivery, "KEEP", 3)
    secret = inbound.hook_secret(tracker)
    for _ in range(5):
        post(client, org, "tracker", jira(), secret=secret)  # accepted, logged
    assert InboundDelivery.all_orgs.filter(organization=org).count() == 3


def test_a_flood_of_unsigned_requests_neither_throttles_jira_nor_evicts_accepted_deliveries(
    client, org, tracker, linked, settings, monkeypatch
):
    settings.INBOUND_HOOK_RATE = "3/min"
    monkeypatch.setattr(InboundDelivery, "KEEP_REFUSED", 2)
    secret = inbound.hook_secret(tracker)
    assert post(client, org, "tracker", jira(), secret=secret).status_code == 200
    # One address floods unsigned and wrongly signed requests: its own budget runs out, not the organization's.
    codes = [post(client, org, "tracker", jira(), secret=None).status_code for _ in range(4)]
    codes += [post(client, org, "tracker", jira(), secret="whin_wrong").status_code for _ in range(2)]
    assert codes == [401, 401, 401, 429, 429, 429]
    # Many addresses (each under its budget) flood too: only the window's first unverified refusal is logged.
    for ip in ADDRESSES[1:20]:
        data = json.dumps(jira()).encode()
        client.post(f"/hooks/{org.slug}/tracker/", data=data, content_type="application/json", REMOTE_ADDR=ip)
    assert InboundDelivery.all_orgs.filter(organization=org, status_code=401).count() == 1
    # Jira, correctly signed, is still served (2 more of its 3) and its deliveries are all still logged.
    assert post(client, org, "tracker", jira(), secret=secret).status_code == 200
    # Signed but refused deliveries (unknown issue) are pruned against their own cap, never the accepted ones.
    assert post(client, org, "tracker", jira(key="PROD-999"), secret=secret).status_code == 422
    assert post(client, org, "tracker", jira(), secret=secret).status_code == 429
    accepted = InboundDelivery.all_orgs.filter(organization=org, outcome__in=["applied", "ignored"])
    assert accepted.count() == 2
    assert InboundDelivery.all_orgs.filter(organization=org, outcome__in=["refused", "throttled"]).count() == 2
