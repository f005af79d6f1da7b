"""Segment-compatible event ingestion (spec §8): auth, limits, validation (all or nothing), dedupe,
group/identify/track semantics, tenancy, and end to end with the official ``segment-analytics-python``."""

from __future__ import annotations

import base64
import gzip
import json
import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, models
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Account, Contact, WriteKey
from health.models import IngestionRefusal, IngestionStat, ProductUser, UsageEvent, UserAccountLink

from .factories import AccountFactory, ContactFactory


@pytest.fixture
def write_key(org) -> str:
    return WriteKey.issue(organization=org, name="tests")[1]


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def post(path: str, body, key: str | None, *, gzipped: bool = False, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {}
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = basic(key)
    if gzipped:
        data = gzip.compress(data)
        headers["HTTP_CONTENT_ENCODING"] = "gzip"
    return Client().post(path, data=data, content_type="application/json", **headers)


def track(i: int, user: str = "u1", **extra) -> dict:
    return {"type": "track", "event": "Report Built", "userId": user, "messageId": f"m-{i}", **extra}


def events_of(org):
    return UsageEvent.objects.for_org(org)


# --- auth --------------------------------------------------------------------------------------


def test_missing_wrong_revoked_and_api_keys_get_401(org, write_key, api_key):
    body = {"batch": [track(1)]}
    assert post("/v1/batch", body, None).status_code == 401
    assert post("/v1/batch", body, "rwk_not-a-key").status_code == 401
    response = post("/v1/batch", body, api_key(org, "admin"))
    assert response.status_code == 401
    assert "API key" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Basic")
    key = WriteKey.objects.for_org(org).get()
    key.revoke()
    assert post("/v1/batch", body, write_key).status_code == 401
    assert events_of(org).count() == 0


def test_write_key_cannot_use_the_rest_api(org, write_key):
    response = Client().get("/api/v1/accounts/", HTTP_AUTHORIZATION=f"Bearer {write_key}")
    assert response.status_code == 401


def test_get_is_not_allowed(write_key):
    response = Client().get("/v1/batch", HTTP_AUTHORIZATION=basic(write_key))
    assert response.status_code == 405


# --- bodies and limits -------------------------------------------------------------------------


def test_batch_stores_events_and_answers_like_segment(org, write_key, account):
    response = post(
        "/v1/batch",
        {"batch": [track(1, timestamp="2026-03-01T10:00:00+02:00"), track(2)], "sentAt": None},
        write_key,
    )
    assert response.status_code == 200, response.content
    # u1 is linked to no account yet: stored, and said so (counted once a group call links the user).
    assert response.json() == {"success": True, "unattributed": 2}
    stored = {e.message_id: e for e in events_of(org)}
    assert set(stored) == {"m-1", "m-2"}
    assert stored["m-1"].timestamp.isoformat() == "2026-03-01T08:00:00+00:00"  # stored in UTC
    assert stored["m-1"].event == "Report Built" and stored["m-1"].user_id == "u1"


def test_gzip_body_is_accepted(org, write_key):
    response = post("/v1/batch", {"batch": [track(i) for i in range(5)]}, write_key, gzipped=True)
    assert response.status_code == 200, response.content
    assert events_of(org).count() == 5
    broken = Client().post(
        "/v1/batch",
        data=b"not gzip",
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(write_key),
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert broken.status_code == 400


def test_event_over_32kb_and_batch_over_500kb_get_413_and_store_nothing(org, write_key):
    big = track(2, properties={"blob": "x" * 33_000})
    response = post("/v1/batch", {"batch": [track(1), big]}, write_key)
    assert response.status_code == 413
    assert response.json()["errors"] == [{"index": 1, "messageId": "m-2", "reason": "event exceeds 32 KB"}]
    single = post("/v1/track", big, write_key)
    assert single.status_code == 413
    events = [track(i, properties={"blob": "y" * 20_000}) for i in range(30)]  # ~600 KB
    response = post("/v1/batch", {"batch": events}, write_key)
    assert response.status_code == 413
    assert "500 KB" in response.json()["detail"]
    # A small gzip body that inflates beyond the limit is refused too.
    response = post("/v1/batch", {"batch": events}, write_key, gzipped=True)
    assert response.status_code == 413
    assert events_of(org).count() == 0


def test_one_malformed_event_rejects_the_whole_batch_naming_it(org, write_key):
    batch = [
        track(0),
        {"type": "track", "userId": "u2", "messageId": "m-bad"},  # no event name
        track(2, timestamp="yesterday"),
        {"type": "track", "event": "x", "messageId": "m-anon"},  # no user
        {"type": "frobnicate", "userId": "u1"},
        "not an object",
        track(6),
    ]
    response = post("/v1/batch", {"batch": batch}, write_key)
    assert response.status_code == 400
    body = response.json()
    assert "nothing was stored" in body["detail"]
    errors = {e["index"]: e for e in body["errors"]}
    assert set(errors) == {1, 2, 3, 4, 5}
    assert errors[1]["messageId"] == "m-bad" and "event name" in errors[1]["reason"]
    assert "timestamp 'yesterday'" in errors[2]["reason"]
    assert "userId or anonymousId" in errors[3]["reason"]
    assert errors[4]["messageId"] is None and "unknown type 'frobnicate'" in errors[4]["reason"]
    assert events_of(org).count() == 0  # the valid events 0 and 6 were not stored either


def test_bad_json_and_empty_batch_are_400(write_key):
    assert post("/v1/batch", None, write_key, raw=b"{nope").status_code == 400
    assert post("/v1/batch", {"batch": []}, write_key).status_code == 400
    assert post("/v1/batch", {"events": [track(1)]}, write_key).status_code == 400
    nul = post("/v1/batch", {"batch": [track(1, properties={"x": "a\u0000b"})]}, write_key)
    assert nul.status_code == 400 and "NUL" in nul.json()["detail"]


def is_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"] and body["code"] and body["message"] == body["detail"]
    return body


def test_deeply_nested_json_is_refused_with_its_reason(org, write_key):
    """Issue 18 finding 11: 200,000 nested arrays used to answer 500 (RecursionError), which Segment
    clients retry forever."""
    deep = b'{"batch": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    body = is_json_error(post("/v1/batch", None, write_key, raw=deep), 400)
    assert "nested too deeply" in body["detail"]
    single = is_json_error(post("/v1/track", None, write_key, raw=b"[" * 16_000 + b"]" * 16_000), 400)
    assert "nested too deeply" in single["detail"]
    # Within the parser's reach but beyond the limit: refused the same way, not stored.
    nested: dict = {}
    for _ in range(100):
        nested = {"a": nested}
    body = is_json_error(post("/v1/batch", {"batch": [track(1, properties=nested)]}, write_key), 400)
    assert "at most 64 levels" in body["detail"]
    assert events_of(org).count() == 0


def test_every_v1_error_answers_json(org, write_key):
    assert is_json_error(post("/v1/batch", None, write_key, raw=b"{nope"), 400)["detail"].startswith(
        "Body is not valid JSON"
    )
    broken_gzip = Client().post(
        "/v1/batch",
        data=b"\x1f\x8b not really",
        content_type="application/json",
        HTTP_AUTHORIZATION=basic(write_key),
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert "gzip" in is_json_error(broken_gzip, 400)["detail"]
    too_big = post("/v1/batch", None, write_key, raw=b'{"batch": [' + b" " * 600_000 + b"]}")
    assert "500 KB" in is_json_error(too_big, 413)["detail"]
    for number in (b"NaN", b"1e999", b"-Infinity"):
        raw = b'{"batch": [{"type": "track", "event": "x", "userId": "u", "properties": {"n": ' + number + b"}}]}"
        assert "not valid JSON" in is_json_error(post("/v1/batch", None, write_key, raw=raw), 400)["detail"]
    surrogate = b'{"batch": [{"type": "track", "event": "x\\ud800", "userId": "u"}]}'
    assert "surrogate" in is_json_error(post("/v1/batch", None, write_key, raw=surrogate), 400)["detail"]
    assert is_json_error(Client().get("/v1/nope"), 404)["code"] == "not_found"
    assert is_json_error(post("/v1/batch/", {"batch": [track(1)]}, write_key), 404)["code"] == "not_found"
    assert is_json_error(Client().get("/v1/batch", HTTP_AUTHORIZATION=basic(write_key)), 405)
    assert is_json_error(post("/v1/batch", {"batch": [track(1)]}, None), 401)
    assert events_of(org).count() == 0


def test_an_unexpected_error_answers_json_500(org, write_key, monkeypatch):
    import health.ingest

    def boom(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(health.ingest, "ingest_events", boom)
    assert is_json_error(post("/v1/batch", {"batch": [track(1)]}, write_key), 500)["code"] == "internal_error"


def test_an_event_that_cannot_be_counted_is_refused_with_its_message_id_and_reason(org, write_key):
    from django.utils import timezone

    org.time_zone = "America/New_York"
    org.save()
    future = (timezone.now() + timezone.timedelta(days=2)).isoformat()
    batch = [
        track(0),
        track(1, timestamp=future),  # a day that has not begun
        track(2, timestamp="0001-01-01T02:00:00+00:00"),  # in New York that is year 0: no such day
        track(3, timestamp="9999-12-31T23:00:00-05:00"),  # not a UTC instant at all
    ]
    body = is_json_error(post("/v1/batch", {"batch": batch}, write_key), 400)
    errors = {e["messageId"]: e["reason"] for e in body["errors"]}
    assert set(errors) == {"m-1", "m-2", "m-3"}
    assert "has not begun cannot be counted" in errors["m-1"]
    assert "outside the calendar" in errors["m-2"]
    assert "not an ISO-8601 date-time (years 1 to 9999)" in errors["m-3"]
    assert events_of(org).count() == 0  # never accepted, so never silently dropped
    refusal = IngestionRefusal.objects.for_org(org).get()
    assert (refusal.status, refusal.events, [e["messageId"] for e in refusal.errors]) == (400, 4, ["m-1", "m-2", "m-3"])
    stats = dict(IngestionStat.objects.for_org(org).values_list("name", "value"))
    assert stats == {"refused_requests": 1, "refused_events": 4}
    # A date far in the past is countable: accepted.
    assert post("/v1/batch", {"batch": [track(4, timestamp="1999-06-30T12:00:00Z")]}, write_key).status_code == 200


def test_only_the_newest_refusals_are_kept(org, write_key, monkeypatch):
    monkeypatch.setattr(IngestionRefusal, "KEEP", 3)
    for i in range(5):
        post("/v1/batch", {"batch": [{"type": "track", "userId": "u", "messageId": f"bad-{i}"}]}, write_key)
    kept = IngestionRefusal.objects.for_org(org).order_by("id")
    assert [r.errors[0]["messageId"] for r in kept] == ["bad-2", "bad-3", "bad-4"]
    assert IngestionStat.objects.for_org(org).get(name="refused_requests").value == 5


def test_counters_say_what_was_stored_and_what_was_not(org, write_key, account):
    post("/v1/group", {"userId": "u1", "groupId": account.external_id, "messageId": "g1"}, write_key)
    batch = [track(1), track(2), track(2), {"type": "page", "userId": "u1", "messageId": "p"}, track(3, user="nobody")]
    response = post("/v1/batch", {"batch": batch}, write_key)
    assert response.json() == {
        "success": True,
        "ignored": [{"index": 3, "messageId": "p", "reason": "page calls are accepted but not used by Retain"}],
        "duplicates": 1,
        "unattributed": 1,
    }
    assert post("/v1/batch", {"batch": [track(1)]}, write_key).json() == {"success": True, "duplicates": 1}
    stats = dict(IngestionStat.objects.for_org(org).values_list("name", "value"))
    assert stats == {
        "requests_accepted": 3,
        "accepted": 4,  # g1, m-1, m-2, m-3
        "duplicates": 2,  # m-2 twice in one batch, m-1 resent
        "ignored": 1,
        "unattributed": 1,  # nobody's track: no link yet
    }


def test_a_group_call_attributes_the_earlier_events_of_its_user(org, write_key, account):
    from health.rollups import rollup_usage

    assert post("/v1/batch", {"batch": [track(1, user="late"), track(2, user="late")]}, write_key).json() == {
        "success": True,
        "unattributed": 2,
    }
    assert set(events_of(org).values_list("account_id", flat=True)) == {None}
    anonymous = {"type": "track", "event": "Viewed", "anonymousId": "anon-1", "messageId": "anon"}
    assert post("/v1/batch", {"batch": [anonymous]}, write_key).status_code == 200
    group = [
        {"type": "group", "userId": "late", "groupId": account.external_id, "messageId": "g1"},
        {"type": "group", "anonymousId": "anon-1", "groupId": account.external_id, "messageId": "g2"},
    ]
    assert post("/v1/batch", {"batch": group}, write_key).status_code == 200
    assert set(events_of(org).filter(type="track").values_list("account_id", flat=True)) == {account.pk}
    assert IngestionStat.objects.for_org(org).get(name="attributed_late").value == 3
    assert rollup_usage(org.pk)["events"] == 3


def test_single_endpoints_imply_their_type(org, write_key, account):
    assert post("/v1/track", {"event": "Login", "userId": "u1", "messageId": "t1"}, write_key).status_code == 200
    assert post("/v1/group", {"groupId": account.external_id, "userId": "u1"}, write_key).status_code == 200
    assert post("/v1/identify", {"userId": "u1", "traits": {"name": "Ann"}}, write_key).status_code == 200
    mismatch = post("/v1/track", {"type": "group", "groupId": "x", "userId": "u1"}, write_key)
    assert mismatch.status_code == 400
    assert sorted(events_of(org).values_list("type", flat=True)) == ["group", "identify", "track"]


def test_page_calls_are_accepted_and_reported_as_ignored(org, write_key):
    response = post("/v1/batch", {"batch": [track(0), {"type": "page", "userId": "u1", "messageId": "p"}]}, write_key)
    assert response.status_code == 200
    assert response.json()["ignored"][0]["messageId"] == "p"
    assert list(events_of(org).values_list("message_id", flat=True)) == ["m-0"]


# --- dedupe, ids, timestamps -------------------------------------------------------------------


def test_same_batch_twice_stores_the_same_rows(org, write_key):
    body = {"batch": [track(i) for i in range(10)] + [track(3)]}  # a duplicate inside the batch too
    assert post("/v1/batch", body, write_key).status_code == 200
    first = sorted(events_of(org).values_list("id", "message_id"))
    assert post("/v1/batch", body, write_key).status_code == 200
    assert sorted(events_of(org).values_list("id", "message_id")) == first
    assert len(first) == 10


def test_missing_message_id_is_derived_deterministically(org, write_key):
    event = {"type": "track", "event": "Login", "userId": "u1", "timestamp": "2026-01-02T03:04:05Z"}
    assert post("/v1/batch", {"batch": [event]}, write_key).status_code == 200
    assert post("/v1/batch", {"batch": [event]}, write_key).status_code == 200
    (stored,) = events_of(org)
    assert stored.message_id.startswith("derived-")
    other = dict(event, timestamp="2026-01-02T03:04:06Z")
    assert post("/v1/batch", {"batch": [other]}, write_key).status_code == 200
    assert events_of(org).count() == 2


def test_client_clock_skew_is_corrected_from_sent_at(org, write_key):
    from django.utils import timezone

    now = timezone.now()
    # The client's clock runs 2 hours behind: sentAt says now - 2h.
    skewed = (now - timezone.timedelta(hours=2)).isoformat()
    happened = (now - timezone.timedelta(hours=2, minutes=10)).isoformat()
    body = {"batch": [track(1, timestamp=happened)], "sentAt": skewed}
    assert post("/v1/batch", body, write_key).status_code == 200
    stored = events_of(org).get()
    offset = (now - stored.timestamp).total_seconds()
    assert 590 < offset <= 600  # ten minutes before it reached us, not two hours ten


def test_small_clock_differences_keep_the_client_timestamp(org, write_key):
    from django.utils import timezone

    sent = (timezone.now() - timezone.timedelta(seconds=20)).isoformat()  # latency, not a wrong clock
    body = {"batch": [track(1, timestamp="2026-05-01T23:59:59.999Z")], "sentAt": sent}
    assert post("/v1/batch", body, write_key).status_code == 200
    assert events_of(org).get().timestamp.isoformat() == "2026-05-01T23:59:59.999000+00:00"


# --- semantics ---------------------------------------------------------------------------------


def test_group_links_user_and_track_gets_the_account(org, write_key, account):
    batch = [
        track(0, user="u9"),  # before the link: no account
        {"type": "group", "userId": "u9", "groupId": account.external_id, "messageId": "g"},
        track(2, user="u9"),
    ]
    assert post("/v1/batch", {"batch": batch}, write_key).status_code == 200
    link = UserAccountLink.objects.for_org(org).get()
    assert (link.user_id, link.account_id) == ("u9", account.pk)
    accounts = dict(events_of(org).values_list("message_id", "account_id"))
    # The track sent before the group call of the same batch gets the account it links.
    assert accounts == {"m-0": account.pk, "g": account.pk, "m-2": account.pk}
    # A later request resolves through the stored link; context.groupId wins over it.
    other = AccountFactory(organization=org)
    batch = [track(3, user="u9"), track(4, user="u9", context={"groupId": other.external_id})]
    assert post("/v1/batch", {"batch": batch}, write_key).status_code == 200
    accounts = dict(events_of(org).values_list("message_id", "account_id"))
    assert accounts["m-3"] == account.pk and accounts["m-4"] == other.pk


def test_unknown_account_is_rejected_unless_the_org_creates_accounts(org, write_key):
    batch = [track(0), {"type": "group", "userId": "u1", "groupId": "NEW-1", "traits": {"name": "New Co"}}]
    response = post("/v1/batch", {"batch": batch}, write_key)
    assert response.status_code == 400
    assert response.json()["errors"] == [{"index": 1, "messageId": None, "reason": "unknown account (groupId 'NEW-1')"}]
    assert events_of(org).count() == 0 and not Account.objects.for_org(org).exists()

    org.create_accounts_from_events = True
    org.save()
    response = post("/v1/batch", {"batch": batch}, write_key)
    assert response.status_code == 200
    assert response.json()["accountsCreated"] == ["NEW-1"]
    created = Account.objects.for_org(org).get(external_id="NEW-1")
    assert created.name == "New Co"
    assert UserAccountLink.objects.for_org(org).get(user_id="u1").account == created
    assert post("/v1/batch", {"batch": batch}, write_key).status_code == 200
    assert Account.objects.for_org(org).count() == 1


def test_identify_creates_then_updates_its_product_user(org, write_key, account):
    post("/v1/group", {"userId": "u1", "groupId": account.external_id}, write_key)
    identify = {"userId": "u1", "traits": {"email": "ann@acme.test", "firstName": "Ann", "lastName": "Lee"}}
    assert post("/v1/identify", identify, write_key).status_code == 200
    user = ProductUser.objects.for_org(org).get()
    assert (user.user_id, user.email, user.name, user.contact) == ("u1", "ann@acme.test", "Ann Lee", None)
    update = {"userId": "u1", "traits": {"name": "Ann Lee-Smith", "title": "CTO"}}
    assert post("/v1/identify", update, write_key).status_code == 200
    user.refresh_from_db()
    assert (user.name, user.title, user.email) == ("Ann Lee-Smith", "CTO", "ann@acme.test")
    assert ProductUser.objects.for_org(org).count() == 1
    assert not Contact.objects.for_org(org).exists()  # events never create CRM contacts


def crm_fields(contact: Contact) -> tuple:
    contact.refresh_from_db()
    return (contact.account_id, contact.external_id, contact.email, contact.name, contact.title, contact.updated_at)


def test_a_write_key_cannot_take_over_a_crm_contact(org, write_key, account):
    """Issue 18 finding 3: identify with userId = a CRM contact's external_id (guessable) used to move the
    contact to the attacker's account and replace its email and name."""
    victim = ContactFactory(
        organization=org, account=account, external_id="DEMO-C000246-6", email="cfo@acme.test", name="Real CFO"
    )
    attacker_account = AccountFactory(organization=org, external_id="ATTACKER")
    before = crm_fields(victim)
    attack = [
        {"type": "group", "userId": "DEMO-C000246-6", "groupId": "ATTACKER", "messageId": "a1"},
        {
            "type": "identify",
            "userId": "DEMO-C000246-6",
            "messageId": "a2",
            "context": {"groupId": "ATTACKER"},
            "traits": {"email": "evil@attacker.test", "name": "Mallory", "title": "Owner"},
        },
        {  # and the other way in: the victim's own email
            "type": "identify",
            "userId": "someone-else",
            "messageId": "a3",
            "traits": {"email": "CFO@acme.test", "name": "Mallory again", "company": {"id": "ATTACKER"}},
        },
    ]
    assert post("/v1/batch", {"batch": attack}, write_key).status_code == 200
    assert crm_fields(victim) == before  # not moved, not renamed, no email change
    assert Contact.objects.for_org(org).count() == 1
    assert Account.objects.for_org(org).get(pk=attacker_account.pk).contacts.count() == 0
    # What the events described lives in ingestion's own records; the link to the CRM is by email, read-only.
    users = {u.user_id: u for u in ProductUser.objects.for_org(org)}
    assert (users["DEMO-C000246-6"].email, users["DEMO-C000246-6"].contact) == ("evil@attacker.test", None)
    assert (users["someone-else"].name, users["someone-else"].contact) == ("Mallory again", victim)


def test_identify_links_a_product_user_to_the_contact_with_its_email(org, write_key, account):
    existing = ContactFactory(organization=org, account=account, email="Bo@Acme.test", external_id=None, name="Bo")
    body = {"userId": "u7", "traits": {"email": "bo@acme.test"}, "context": {"groupId": account.external_id}}
    assert post("/v1/identify", body, write_key).status_code == 200
    assert ProductUser.objects.for_org(org).get().contact == existing
    existing.refresh_from_db()
    assert (existing.external_id, existing.name, existing.email) == (None, "Bo", "Bo@Acme.test")


def test_identify_without_an_account_keeps_the_product_user(org, write_key):
    assert post("/v1/identify", {"userId": "u1", "traits": {"email": "x@y.test"}}, write_key).status_code == 200
    assert events_of(org).count() == 1 and not Contact.objects.for_org(org).exists()
    assert ProductUser.objects.for_org(org).get().email == "x@y.test"
    bad = post("/v1/identify", {"userId": "u1", "traits": {"email": "not-an-email"}}, write_key)
    assert bad.status_code == 400 and "traits.email" in bad.json()["errors"][0]["reason"]


def test_a_write_key_never_reaches_another_orgs_account(org, other_org, write_key):
    theirs = AccountFactory(organization=other_org, external_id="SAME-ID")
    other_key = WriteKey.issue(organization=other_org)[1]
    group = {"type": "group", "userId": "u1", "groupId": "SAME-ID"}
    # Org A has no SAME-ID account: rejected, even though org B has one.
    assert post("/v1/batch", {"batch": [group]}, write_key).status_code == 400
    ours = AccountFactory(organization=org, external_id="SAME-ID")
    assert post("/v1/batch", {"batch": [group, track(1)]}, write_key).status_code == 200
    assert post("/v1/batch", {"batch": [group, track(1)]}, other_key).status_code == 200
    assert UserAccountLink.objects.for_org(org).get().account == ours
    assert UserAccountLink.objects.for_org(other_org).get().account == theirs
    # Same messageId in both orgs: two rows, one per org, each on its own account.
    assert events_of(org).get(message_id="m-1").account == ours
    assert events_of(other_org).get(message_id="m-1").account == theirs


def test_queries_per_batch_do_not_grow_with_its_size(org, write_key, account):
    post("/v1/group", {"userId": "u1", "groupId": account.external_id}, write_key)  # also sets last_used_at

    def count(n: int, offset: int) -> int:
        body = {"batch": [track(offset + i, user=f"u{i % 7}") for i in range(n)]}
        with CaptureQueriesContext(connection) as queries:
            assert post("/v1/batch", body, write_key).status_code == 200
        return len([q for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))])

    # 80 rows stay within one INSERT on SQLite too (999 parameters); Postgres takes 500 KB batches in one.
    small, large = count(5, 0), count(80, 1000)
    assert small == large
    # key, links, insert, the day's counters (+ on SQLite the ids already stored, in place of RETURNING)
    assert large <= (4 if connection.vendor == "postgresql" else 5)


# --- command -----------------------------------------------------------------------------------


def test_create_write_key_prints_a_working_key_on_the_last_line(org):
    out = StringIO()
    call_command("create_write_key", org.slug, "--name", "Segment prod", stdout=out)
    raw = out.getvalue().strip().splitlines()[-1]
    assert raw.startswith("rwk_")
    assert WriteKey.objects.for_org(org).get().name == "Segment prod"
    assert post("/v1/track", track(1), raw).status_code == 200


def test_create_write_key_unknown_org(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("create_write_key", "nope", stdout=StringIO())


# --- end to end with the official client ---------------------------------------------------------


@pytest.fixture
def segment_session_closed():
    """The client keeps one keep-alive session for the process; close it after the test so the live
    server's request threads (and their database connections) end before the test database is dropped."""
    yield
    from segment.analytics import request as segment_request

    segment_request._session.close()
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(5)


@pytest.mark.django_db(transaction=True)
def test_official_segment_client_end_to_end(live_server, segment_session_closed):
    from segment.analytics import Client as SegmentClient

    from accounts.services import create_organization

    org = create_organization(slug="e2e", name="E2E")[0]
    account = AccountFactory(organization=org, external_id="ACME-1")
    raw = WriteKey.issue(organization=org)[1]
    errors = []
    client = SegmentClient(raw, host=live_server.url, on_error=lambda e, batch: errors.append(e), gzip=True)
    client.group("user-1", "ACME-1", {"name": "Acme"})
    client.identify("user-1", {"email": "ann@acme.test", "name": "Ann"})
    for i in range(25):
        client.track("user-1", "Report Built", {"n": i})
    client.flush()
    client.join()
    assert errors == []
    stored = UsageEvent.objects.for_org(org)
    assert stored.filter(type="track", account=account).count() == 25
    assert stored.count() == 27
    assert ProductUser.objects.for_org(org).get().email == "ann@acme.test"
    assert not Contact.objects.for_org(org).exists()

    sync = SegmentClient(raw, host=live_server.url, sync_mode=True)
    sync.track("user-1", "Signed In", message_id="fixed-id")
    sync.track("user-1", "Signed In", message_id="fixed-id")  # a retry: deduplicated
    assert stored.filter(message_id="fixed-id", account=account).count() == 1


@pytest.mark.django_db(transaction=True)
def test_official_client_batches_count_per_account_and_a_resend_changes_nothing(live_server, segment_session_closed):
    """2,000 track events of 100 users on 50 accounts, sent in the client's own batches of 100, twice."""
    from collections import Counter
    from datetime import UTC, datetime, timedelta

    from segment.analytics import Client as SegmentClient

    from accounts.services import create_organization

    org = create_organization(slug="e2e-volume", name="E2E volume")[0]
    accounts = [AccountFactory(organization=org, external_id=f"V-{i:02d}") for i in range(50)]
    raw = WriteKey.issue(organization=org)[1]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    expected: Counter[int] = Counter()

    def send() -> list:
        errors: list = []
        client = SegmentClient(raw, host=live_server.url, on_error=lambda e, b: errors.append(e), max_queue_size=5000)
        for u in range(100):
            client.group(f"user-{u}", accounts[u % 50].external_id, message_id=f"g-{u}")
        for i in range(2000):
            u = i % 100
            when = start + timedelta(minutes=17 * i)
            client.track(f"user-{u}", "Report Built", {"i": i}, timestamp=when, message_id=f"t-{i}")
        client.flush()
        client.join()
        return errors

    for i in range(2000):
        expected[accounts[(i % 100) % 50].pk] += 1
    assert send() == []
    tracks = UsageEvent.objects.for_org(org).filter(type="track")
    counts = Counter(dict(tracks.values_list("account").annotate(n=models.Count("id")).values_list("account", "n")))
    assert counts == expected
    assert send() == []  # the same messages again: deduplicated
    assert tracks.count() == 2000


@pytest.mark.django_db
def test_a_product_user_linked_to_a_demo_contact_survives_a_reseed():
    """Re-seeding the demo deletes its contacts without the collector: the product user's read-only link
    must not keep a reference to them (the commit would fail on Postgres)."""
    import datetime as dt

    from accounts.demo import seed_demo

    first = seed_demo(slug="demo", accounts=20, seed=3, today=dt.date(2026, 11, 23))
    contact = Contact.objects.for_org(first.organization).exclude(email="").first()
    key = WriteKey.issue(organization=first.organization)[1]
    assert post("/v1/identify", {"userId": "u1", "traits": {"email": contact.email}}, key).status_code == 200
    assert ProductUser.objects.for_org(first.organization).get().contact == contact
    again = seed_demo(slug="demo", accounts=20, seed=3, today=dt.date(2026, 11, 23))
    user = ProductUser.objects.for_org(again.organization).get()
    assert (user.user_id, user.email, user.contact) == ("u1", contact.email, None)
