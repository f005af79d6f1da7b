"""The ingestion status (page and API): every counter of what was and was not counted is visible to the
organization's admins, to them only, and never mixes organizations."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import WriteKey
from health.ingest_status import COUNTERS
from health.models import UsageEvent
from health.rollups import purge_raw_events, rollup_usage

from .factories import AccountFactory

pytestmark = pytest.mark.django_db


def send(key: str, batch: list[dict]) -> int:
    return (
        Client()
        .post(
            "/v1/batch",
            data=json.dumps({"batch": batch}),
            content_type="application/json",
            HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        )
        .status_code
    )


def track(i: int, user: str = "u1", **extra) -> dict:
    return {"type": "track", "event": "Report Built", "userId": user, "messageId": f"m-{i}", **extra}


@pytest.fixture
def traffic(org, other_org):
    """One of everything: stored, duplicate, ignored, unattributed then attributed, refused, counted, purged,
    expired. And some traffic in another organization that must not show."""
    account = AccountFactory(organization=org, external_id="A")
    key = WriteKey.issue(organization=org)[1]
    assert send(key, [{"type": "group", "userId": "u1", "groupId": "A", "messageId": "g1"}, track(1), track(2)]) == 200
    assert send(key, [track(2), {"type": "screen", "userId": "u1", "messageId": "s1"}]) == 200  # a retry + ignored
    assert send(key, [track(3, user="later"), track(4, user="never")]) == 200  # no account yet
    assert send(key, [{"type": "group", "userId": "later", "groupId": "A", "messageId": "g2"}]) == 200
    assert send(key, [track(5), {"type": "track", "userId": "u1", "messageId": "no-name"}]) == 400
    rollup_usage(org.pk)
    never = UsageEvent.objects.for_org(org).get(message_id="m-4")
    UsageEvent.objects.for_org(org).filter(pk=never.pk).update(received_at=timezone.now() - dt.timedelta(days=91))
    purge_raw_events(org.pk)
    AccountFactory(organization=other_org, external_id="A")
    theirs = WriteKey.issue(organization=other_org)[1]
    assert send(theirs, [{"type": "group", "userId": "x", "groupId": "A"}, track(1, user="x")]) == 200
    assert send(theirs, [{"type": "track"}]) == 400
    return account


EXPECTED_TOTALS = {
    "requests_accepted": 4,
    "accepted": 6,  # g1, m-1, m-2, m-3, m-4, g2 (m-2 sent again is a duplicate)
    "counted": 3,  # m-1, m-2, m-3 (attributed by g2)
    "duplicates": 1,
    "ignored": 1,
    "unattributed": 2,  # m-3, m-4
    "attributed_late": 1,  # m-3
    "refused_requests": 1,
    "refused_events": 2,
    "unattributed_expired": 1,  # m-4: its user was never linked
    "purged": 0,
}


def test_the_api_shows_every_counter_to_admins_of_the_org_only(org, traffic, api):
    response = api(org, "admin").get("/api/v1/ingestion-status/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["totals"] == EXPECTED_TOTALS
    assert list(body["totals"]) == list(COUNTERS)
    assert body["waiting"] == {
        "pending_events": 0,
        "pending_oldest_received_at": None,
        "unattributed_events": 0,
        "unattributed_users": 0,
        "unattributed_oldest_received_at": None,
    }
    assert body["daily"] == [
        {"date": timezone.localdate().isoformat(), "counters": {k: v for k, v in EXPECTED_TOTALS.items() if v}}
    ]
    (refusal,) = body["recent_refusals"]
    assert refusal["status"] == 400 and refusal["events"] == 2
    assert refusal["errors"] == [{"index": 1, "messageId": "no-name", "reason": refusal["errors"][0]["reason"]}]
    assert "event name" in refusal["errors"][0]["reason"]
    for role in ("leader", "csm", "viewer"):
        assert api(org, role).get("/api/v1/ingestion-status/").status_code == 403
    assert api(org, "admin").get("/api/v1/ingestion-status/?days=0").status_code == 400
    assert api(org, "admin").get("/api/v1/ingestion-status/?days=x").json()["errors"]["days"]


def test_waiting_events_are_shown_until_counted(org, api):
    AccountFactory(organization=org, external_id="A")
    key = WriteKey.issue(organization=org)[1]
    send(key, [{"type": "group", "userId": "u1", "groupId": "A", "messageId": "g"}, track(1), track(2, user="lost")])
    waiting = api(org, "admin").get("/api/v1/ingestion-status/").json()["waiting"]
    assert (waiting["pending_events"], waiting["unattributed_events"], waiting["unattributed_users"]) == (1, 1, 1)
    assert waiting["pending_oldest_received_at"] and waiting["unattributed_oldest_received_at"]
    rollup_usage(org.pk)
    body = api(org, "admin").get("/api/v1/ingestion-status/").json()
    assert body["waiting"]["pending_events"] == 0 and body["rollup"]["last_run_at"] is None  # run by hand here


def test_the_page_shows_the_counters_and_refusals_to_admins_only(client, org, alice, bob, charlie, traffic):
    url = reverse("admin-ingestion", args=[org.slug])
    client.force_login(alice)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    for name, value in {"counted": 3, "duplicates": 1, "refused_events": 2, "unattributed_expired": 1}.items():
        row = html.split(f'data-counter="{name}"', 1)[1].split("</tr>", 1)[0]
        assert f'<td class="num">{value}</td>' in row, (name, row)
    assert "no-name" in html and "event name" in html  # the refused event and why
    assert 'aria-current="page">Ingestion<' in html
    client.force_login(bob)
    assert client.get(url).status_code == 403
    client.force_login(charlie)  # an admin of another organization
    assert client.get(url).status_code == 404


def test_the_schema_documents_the_endpoint(client):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/ingestion-status/"]["get"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    properties = schema["components"]["schemas"][ref]["properties"]
    assert {"waiting", "rollup", "totals", "daily", "recent_refusals"} <= set(properties)
    totals = schema["components"]["schemas"][properties["totals"]["allOf"][0]["$ref"].rsplit("/", 1)[1]]
    assert set(totals["properties"]) == set(COUNTERS)
