"""Outbound webhooks against a real HTTP receiver on 127.0.0.1 (no mocks of the network).

Loopback is refused by the outbound guard unless the operator allows it, so this module allows
127.0.0.0/8 (``OUTBOUND_ALLOWED_NETWORKS``) except where a test proves the refusal. Every test runs
inside the loopback-only safety belt of tests/outbound_helpers.py.

Retries are driven without waiting: the service's scheduler is injected and records each
``(attempt, countdown)``; the test then runs the recorded next try, exactly as Celery would after
the countdown. One test runs the whole chain through eager Celery instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from cs_platform import outbound
from cs_platform.events import dispatch
from playbooks import services
from playbooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from playbooks.tasks import deliver_webhook

from .factories import AccountFactory
from .outbound_helpers import (  # noqa: F401 - fixtures
    Receiver,
    clear_outbound_budgets,
    loopback_only_fixture,
    receiver_fixture,
    routed,
    wait_for,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_only")]


@pytest.fixture(autouse=True)
def allow_loopback(settings):
    """The receivers of this module listen on loopback: allowed as an operator would allow a network."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture(autouse=True)
def fresh_budgets(org, other_org):
    """Test-send budgets and outbound slots live in the cache/Redis, keyed by organization id, and ids
    can repeat between tests (SQLite reuses them after a rollback): start every test from zero."""

    clear_outbound_budgets(org.pk, other_org.pk)
    yield
    clear_outbound_budgets(org.pk, other_org.pk)


def make_endpoint(org, url: str, event_types: list[str] | None = None, **kwargs: Any) -> WebhookEndpoint:
    return WebhookEndpoint.all_orgs.create(
        organization=org,
        url=url,
        event_types=event_types or ["account.created"],
        secret=services.generate_secret(),
        **kwargs,
    )


class Recorder:
    """Injected scheduler: records the tries Celery would run later."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int, float]] = []

    def __call__(self, organization_id: int, delivery_id: int, attempt: int, countdown: float) -> None:
        self.calls.append((organization_id, delivery_id, attempt, countdown))


def test_fails_twice_then_succeeds_is_received_exactly_once_more_and_logs_three_attempts(
    org, receiver, django_capture_on_commit_callbacks
):
    endpoint = make_endpoint(org, receiver.url())
    receiver.statuses = [500, 500]
    with django_capture_on_commit_callbacks() as enqueued:
        (delivery,) = services.emit(org.pk, "account.created", {"id": 1, "name": "Initech"})
    assert len(enqueued) == 1  # delivery waits for the commit

    schedule = Recorder()
    attempt = 1
    while True:
        with django_capture_on_commit_callbacks(execute=True):
            services.attempt_delivery(org.pk, delivery.pk, attempt=attempt, schedule=schedule)
        delivery.refresh_from_db()
        if delivery.is_final:
            break
        assert schedule.calls[-1][:3] == (org.pk, delivery.pk, attempt + 1)
        attempt = schedule.calls[-1][2]

    assert [c[3] for c in schedule.calls] == [30, 120]  # exponential back-off, no third retry scheduled
    assert delivery.status == DeliveryStatus.SUCCEEDED
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (3, 200, "")
    log = list(WebhookAttempt.all_orgs.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.status_code, a.retry_in_seconds) for a in log] == [(1, 500, 30), (2, 500, 120), (3, 200, None)]
    assert log[0].error == "The receiver answered HTTP 500."
    # Three requests reached the receiver; the event arrived once after the two failures, same id each time.
    bodies = receiver.bodies()
    assert len(bodies) == 3
    assert len({b["id"] for b in bodies}) == 1
    assert len({r["body"] for r in receiver.requests}) == 1  # byte-identical retries

    # A late or duplicated message for any try of a succeeded delivery sends nothing.
    for n in (1, 2, 3, 4):
        assert services.attempt_delivery(org.pk, delivery.pk, attempt=n, schedule=schedule) is None
    deliver_webhook(org.pk, delivery.pk, attempt=3)
    assert len(receiver.requests) == 3
    assert endpoint.deliveries.count() == 1


def test_eager_celery_runs_the_whole_retry_chain(org, receiver, django_capture_on_commit_callbacks):
    from cs_platform.celery import app

    make_endpoint(org, receiver.url())
    receiver.statuses = [500, 503]
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True  # countdowns are ignored in eager mode
    try:
        with django_capture_on_commit_callbacks(execute=True):
            (delivery,) = services.emit(org.pk, "account.created", {"id": 7})
    finally:
        app.conf.task_always_eager = before
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 3)
    assert list(delivery.attempt_log.values_list("status_code", "retry_in_seconds")) == [
        (500, 30),
        (503, 120),
        (200, None),
    ]
    assert len(receiver.requests) == 3


def test_gives_up_after_six_attempts(org, receiver):
    make_endpoint(org, receiver.url())
    receiver.statuses = [500] * 10
    (delivery,) = services.emit(org.pk, "account.created", {"id": 1})
    schedule = Recorder()
    for attempt in range(1, 8):
        services.attempt_delivery(org.pk, delivery.pk, attempt=attempt, schedule=schedule)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.FAILED, 6, None)
    assert len(receiver.requests) == 6  # the seventh call found a finished delivery
    assert list(delivery.attempt_log.values_list("retry_in_seconds", flat=True)) == [30, 120, 600, 3600, 21600, None]


def test_signature_headers_and_body_are_verifiable_by_the_receiver(org, receiver):
    endpoint = make_endpoint(org, receiver.url())
    (delivery,) = services.emit(org.pk, "account.created", {"id": 5, "name": "Hooli"})
    services.attempt_delivery(org.pk, delivery.pk)
    (request,) = receiver.requests
    headers = {k.lower(): v for k, v in request["headers"].items()}
    expected = "sha256=" + hmac.new(endpoint.secret.encode(), request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-retain-signature"], expected)
    wrong = "sha256=" + hmac.new(b"not-the-secret", request["body"], hashlib.sha256).hexdigest()
    assert headers["x-retain-signature"] != wrong
    assert headers["content-type"] == "application/json"
    assert headers["x-retain-event"] == "account.created"
    assert headers["x-retain-delivery"] == str(delivery.pk)
    body = json.loads(request["body"])
    assert set(body) == {"id", "type", "created_at", "organization", "data"}
    assert (body["id"], body["type"], body["organization"]) == (str(delivery.event_id), "account.created", "acme")
    assert body["data"] == {"id": 5, "name": "Hooli"}


def test_account_created_via_api_goes_to_subscribed_endpoints_of_this_org_only(
    org, other_org, alice, receiver, api, django_capture_on_commit_callbacks
):
    make_endpoint(org, receiver.url("/subscribed"), ["account.created", "account.updated"])
    make_endpoint(org, receiver.url("/unsubscribed"), ["cta.opened"])
    make_endpoint(org, receiver.url("/inactive"), ["account.created"], is_active=False)
    make_endpoint(other_org, receiver.url("/other-org"), ["account.created", "account.updated"])
    from cs_platform.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = api(org, "admin", alice).post(
                "/api/v1/accounts/", {"name": "Vandelay", "external_id": "V-1"}, format="json"
            )
        assert response.status_code == 201, response.json()
        with django_capture_on_commit_callbacks(execute=True):
            AccountFactory(organization=other_org, name="Their account")  # the other org's event
    finally:
        app.conf.task_always_eager = before
    assert [r["path"] for r in receiver.requests].count("/subscribed") == 1
    (event,) = receiver.bodies("/subscribed")
    assert event["type"] == "account.created"
    assert event["organization"] == "acme"
    assert (event["data"]["id"], event["data"]["external_id"], event["data"]["name"]) == (
        response.json()["id"],
        "V-1",
        "Vandelay",
    )
    assert receiver.bodies("/unsubscribed") == [] and receiver.bodies("/inactive") == []
    # The other org's endpoint got its own org's account only, never this org's.
    theirs = receiver.bodies("/other-org")
    assert [(e["organization"], e["data"]["name"]) for e in theirs] == [("globex", "Their account")]
    assert not WebhookDelivery.all_orgs.filter(organization=other_org, payload__name="Vandelay").exists()


def test_account_update_emits_account_updated(org, account, receiver):
    make_endpoint(org, receiver.url(), ["account.updated"])
    account.name = "Renamed"
    account.save()
    dispatch(org.pk)  # what the worker does after the commit: the webhook consumer makes the delivery
    (delivery,) = WebhookDelivery.all_orgs.filter(organization=org)
    assert (delivery.event_type, delivery.payload["name"]) == ("account.updated", "Renamed")


def test_nothing_is_emitted_for_a_rolled_back_change(org, receiver, django_capture_on_commit_callbacks):
    from django.db import transaction

    make_endpoint(org, receiver.url())
    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():
                AccountFactory(organization=org)
                raise RuntimeError("abort")
        except RuntimeError:
            pass
    assert callbacks == []
    assert not WebhookDelivery.all_orgs.filter(organization=org).exists()


def test_redirects_are_not_followed(org, receiver):
    make_endpoint(org, receiver.url())
    receiver.statuses = [302]
    (delivery,) = services.emit(org.pk, "account.created", {"id": 1})
    services.attempt_delivery(org.pk, delivery.pk, schedule=Recorder())
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.RETRYING, 302)
    assert "not followed" in delivery.last_error
    assert len(receiver.requests) == 1


def test_unreachable_receiver_is_a_logged_error(org):
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    make_endpoint(org, f"http://127.0.0.1:{port}/hook")
    (delivery,) = services.emit(org.pk, "account.created", {"id": 1})
    services.attempt_delivery(org.pk, delivery.pk, schedule=Recorder())
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.last_status_code is None
    assert delivery.last_error == "The receiver refused the connection."  # plain words, not Python's
    assert delivery.attempt_log.get().error == "The receiver refused the connection."


# --- API ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "csm", "leader"])
def test_only_admins_create_or_change_webhooks(org, role, api):
    client = api(org, role)
    body = {"url": "https://example.com/hook", "event_types": ["account.created"]}
    assert client.post("/api/v1/webhooks/", body, format="json").status_code == 403
    endpoint = make_endpoint(org, "https://example.com/x")
    assert client.patch(f"/api/v1/webhooks/{endpoint.pk}/", {"is_active": False}, format="json").status_code == 403
    assert client.post(f"/api/v1/webhooks/{endpoint.pk}/test/").status_code == 403
    assert client.delete(f"/api/v1/webhooks/{endpoint.pk}/").status_code == 403
    listed = client.get("/api/v1/webhooks/").json()["results"]
    assert [row["secret"] for row in listed] == ["whsec_••••••••"]  # readable list, masked secret
    assert WebhookEndpoint.all_orgs.filter(organization=org).count() == 1


def test_admin_creates_reads_secret_and_tests_an_endpoint(org, alice, api, receiver):
    client = api(org, "admin", alice)
    response = client.post(
        "/api/v1/webhooks/",
        {"url": receiver.url(), "event_types": ["cta.closed", "account.created", "cta.closed"], "description": "CRM"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    data = response.json()
    endpoint = WebhookEndpoint.all_orgs.get(pk=data["id"])
    assert data["secret"] == endpoint.secret and endpoint.secret.startswith("whsec_")
    assert data["event_types"] == ["account.created", "cta.closed"]
    assert data["created_by"] == alice.email

    sent = client.post(f"/api/v1/webhooks/{endpoint.pk}/test/")
    assert sent.status_code == 202, sent.json()
    services.attempt_delivery(org.pk, sent.json()["id"])
    (event,) = receiver.bodies()
    assert event["type"] == "webhook.test"
    log = client.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/").json()
    assert log["count"] == 1
    row = log["results"][0]
    assert (row["status"], row["last_status_code"], row["attempts"]) == ("succeeded", 200, 1)
    assert [a["status_code"] for a in row["attempt_log"]] == [200]
    assert client.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/", {"status": "failed"}).json()["count"] == 0
    # Delivery filters narrow the log, not the endpoint lookup (which has no event_type "webhook.test").
    assert (
        client.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/", {"event_type": "webhook.test"}).json()["count"] == 1
    )


@pytest.mark.parametrize(
    "url,event_types,field",
    [
        ("file:///etc/passwd", ["account.created"], "url"),
        ("ftp://example.com/x", ["account.created"], "url"),
        ("javascript:alert(1)", ["account.created"], "url"),
        ("https://user:pw@example.com/", ["account.created"], "url"),
        ("https://example.com/", ["account.deleted"], "event_types"),
        ("https://example.com/", [], "event_types"),
        ("https://example.com/", ["webhook.test"], "event_types"),
    ],
)
def test_bad_webhook_input_is_a_field_error(org, api, url, event_types, field):
    response = api(org, "admin").post("/api/v1/webhooks/", {"url": url, "event_types": event_types}, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert not WebhookEndpoint.all_orgs.filter(organization=org).exists()


def test_internal_single_label_hosts_are_accepted(org, api):
    # It does not resolve here, so registration accepts it; every delivery checks its address.
    body = {"url": "http://crm-sync:8080/hooks/retain", "event_types": ["account.updated"]}
    response = api(org, "admin").post("/api/v1/webhooks/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["url"] == body["url"]


def test_deliveries_of_another_orgs_endpoint_are_404(org, other_org, api):
    theirs = make_endpoint(other_org, "https://example.com/theirs")
    services.send_test(theirs)
    client = api(org, "admin")
    assert client.get(f"/api/v1/webhooks/{theirs.pk}/deliveries/").status_code == 404
    assert client.post(f"/api/v1/webhooks/{theirs.pk}/test/").status_code == 404
    assert WebhookDelivery.all_orgs.filter(endpoint=theirs).count() == 1


# --- Admin page -----------------------------------------------------------------------------------


def test_admin_page_creates_lists_tests_and_deactivates(client, org, alice, bob, receiver):
    client.force_login(alice)
    base = f"/o/{org.slug}/admin/webhooks/"
    assert client.get(base).status_code == 200
    bad = client.post(base, {"url": "ftp://x", "event_types": ["account.created"]})
    assert bad.status_code == 400
    response = client.post(base, {"url": receiver.url(), "event_types": ["account.created", "survey.response"]})
    assert response.status_code == 302
    endpoint = WebhookEndpoint.all_orgs.get(organization=org)
    assert endpoint.event_types == ["account.created", "survey.response"]
    detail = client.get(response["Location"])
    assert endpoint.secret in detail.content.decode()
    client.post(f"{base}{endpoint.pk}/test/")
    delivery = WebhookDelivery.all_orgs.get(endpoint=endpoint)
    services.attempt_delivery(org.pk, delivery.pk)
    fragment = client.get(f"{base}{endpoint.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "webhook.test" in fragment and "Succeeded" in fragment and "200" in fragment
    client.post(f"{base}{endpoint.pk}/toggle/")
    endpoint.refresh_from_db()
    assert not endpoint.is_active
    client.post(f"{base}{endpoint.pk}/delete/")
    assert not WebhookEndpoint.all_orgs.filter(pk=endpoint.pk).exists()

    client.force_login(bob)  # a CSM
    assert client.get(base).status_code == 403


# --- Finding 1: the outbound guard at registration and at delivery ------------------------------------


@pytest.mark.parametrize(
    "url,words",
    [
        ("http://127.0.0.1:8000/api/v1/accounts/", "loopback"),
        ("http://localhost:6379/", "localhost"),
        ("http://[::1]:5432/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://0x7f.1/", "loopback"),
        ("http://0.0.0.0:8000/", "unspecified"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/iam/", "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://10.0.0.12/", "private"),
        ("http://192.168.1.1/admin", "private"),
        ("http://testserver/api/v1/accounts/", "Retain itself"),
    ],
)
def test_registering_an_internal_address_is_refused_with_the_reason(org, api, client, alice, settings, url, words):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    response = api(org, "admin").post("/api/v1/webhooks/", {"url": url, "event_types": ["account.created"]})
    assert response.status_code == 400
    (message,) = response.json()["errors"]["url"]
    assert words in message
    client.force_login(alice)
    page = client.post(f"/o/{org.slug}/admin/webhooks/", {"url": url, "event_types": ["account.created"]})
    assert page.status_code == 400 and words in page.content.decode()
    assert not WebhookEndpoint.all_orgs.filter(organization=org).exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "0x7f.1", "localhost"])
def test_a_delivery_to_loopback_is_refused_at_delivery_time_and_nothing_reaches_the_listener(
    org, receiver, settings, loopback_only, host
):
    """Rows written before the guard (or any other way) are checked again at every try: the check that
    counts. The real listener on 127.0.0.1 receives nothing and no connection is even attempted."""
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    make_endpoint(org, receiver.url(host=host))
    (delivery,) = services.emit(org.pk, "account.created", {"id": 1})
    services.attempt_delivery(org.pk, delivery.pk, schedule=Recorder())
    delivery.refresh_from_db()
    assert receiver.requests == [] and loopback_only.attempts == []
    assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.RETRYING, None)
    assert delivery.last_error.startswith(("Address not allowed", "The host is this machine"))


def test_no_member_can_read_what_a_receiver_answered(org, alice, api, receiver):
    """The old log showed the first 1,000 characters of the answer to every member (an SSRF read
    primitive). Now nothing of the body is read, stored or shown, to any role."""
    endpoint = make_endpoint(org, receiver.url())
    receiver.statuses = [500, 200]
    receiver.reply = b'{"AccessKeyId": "ASIA-SECRET-FROM-THE-METADATA-SERVICE"}'
    (delivery,) = services.emit(org.pk, "account.created", {"id": 1})
    services.attempt_delivery(org.pk, delivery.pk, schedule=Recorder())
    services.attempt_delivery(org.pk, delivery.pk, attempt=2, schedule=Recorder())
    assert len(receiver.requests) == 2
    assert not hasattr(WebhookDelivery, "response_excerpt")
    stored = json.dumps(list(WebhookDelivery.all_orgs.filter(pk=delivery.pk).values()), default=str) + json.dumps(
        list(WebhookAttempt.all_orgs.filter(delivery=delivery).values()), default=str
    )
    assert "SECRET" not in stored
    for role in ("viewer", "csm", "leader", "admin"):
        log = api(org, role).get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/")
        assert log.status_code == 200
        text = log.content.decode()
        assert "SECRET" not in text and "response_excerpt" not in text
        row = log.json()["results"][0]
        assert [a["status_code"] for a in row["attempt_log"]] == [500, 200]
        assert row["attempt_log"][0]["error"] == "The receiver answered HTTP 500."
    client = api(org, "admin", alice)
    assert "SECRET" not in client.get(f"/api/v1/webhooks/{endpoint.pk}/").content.decode()


# --- Finding 6: the full URL is for admins ------------------------------------------------------------


def test_non_admins_see_only_the_host_of_a_webhook_url(org, alice, api, client, bob, make_member):
    secret_url = "https://hooks.example.com:8443/services/T000/B000/XXXXtoken?key=abc123"
    endpoint = make_endpoint(org, secret_url)
    for role in ("viewer", "csm", "leader"):
        caller = api(org, role)
        for response in (caller.get("/api/v1/webhooks/"), caller.get(f"/api/v1/webhooks/{endpoint.pk}/")):
            assert response.status_code == 200
            text = response.content.decode()
            assert "XXXXtoken" not in text and "abc123" not in text and "/services/" not in text
        row = caller.get(f"/api/v1/webhooks/{endpoint.pk}/").json()
        assert (row["url"], row["host"]) == ("https://hooks.example.com:8443", "hooks.example.com:8443")
    admin_row = api(org, "admin", alice).get(f"/api/v1/webhooks/{endpoint.pk}/").json()
    assert (admin_row["url"], admin_row["host"]) == (secret_url, "hooks.example.com:8443")
    # The pages that show URLs are for admins only.
    for role in ("viewer", "csm", "leader"):
        member = make_member(org, role).user
        client.force_login(member)
        for path in ("", f"{endpoint.pk}/"):
            page = client.get(f"/o/{org.slug}/admin/webhooks/{path}")
            assert page.status_code == 403
            assert "XXXXtoken" not in page.content.decode()
    client.force_login(alice)
    assert "XXXXtoken" in client.get(f"/o/{org.slug}/admin/webhooks/{endpoint.pk}/").content.decode()


# --- Finding 5: test sends are rate-limited per organization; queues; per-org slots --------------------


def test_test_sends_are_rate_limited_per_organization_with_retry_after(org, other_org, api, settings, client, alice):
    settings.WEBHOOK_TEST_RATE = "2/min"
    mine = make_endpoint(org, "https://hooks.example.com/a")
    theirs = make_endpoint(other_org, "https://hooks.example.com/b")
    caller = api(org, "admin")
    assert [caller.post(f"/api/v1/webhooks/{mine.pk}/test/").status_code for _ in range(2)] == [202, 202]
    refused = caller.post(f"/api/v1/webhooks/{mine.pk}/test/")
    assert refused.status_code == 429
    assert refused["Content-Type"].startswith("application/json")
    wait = int(refused["Retry-After"])
    assert 1 <= wait <= 60
    assert "Too many test sends: at most 2 per minute" in refused.json()["detail"]
    assert WebhookDelivery.all_orgs.filter(endpoint=mine).count() == 2  # nothing queued for the refused one
    # Another organization has its own budget.
    assert api(other_org, "admin").post(f"/api/v1/webhooks/{theirs.pk}/test/").status_code == 202
    # The page says so in words and queues nothing either.
    client.force_login(alice)
    page = client.post(f"/o/{org.slug}/admin/webhooks/{mine.pk}/test/", follow=True)
    assert page.status_code == 200
    assert "Too many test sends" in page.content.decode()
    assert WebhookDelivery.all_orgs.filter(endpoint=mine).count() == 2


def test_deliveries_are_routed_to_the_outbound_queue():
    from cs_platform.celery import app

    route = app.amqp.Router().route({}, "playbooks.tasks.deliver_webhook")
    assert route["queue"].name == "outbound"
    other = app.amqp.Router().route({}, "health.tasks.recompute_accounts")
    assert other["queue"].name == "celery"


def test_a_try_waits_for_a_free_slot_of_its_organization_without_counting_as_an_attempt(
    org, other_org, receiver, settings, django_capture_on_commit_callbacks
):
    settings.OUTBOUND_ORG_CONCURRENCY = 1
    make_endpoint(org, receiver.url("/mine"))
    make_endpoint(other_org, receiver.url("/theirs"))
    (mine,) = services.emit(org.pk, "account.created", {"id": 1})
    (theirs,) = services.emit(other_org.pk, "account.created", {"id": 2})
    busy = outbound.acquire_slot(org.pk)  # another worker is delivering for this organization
    schedule = Recorder()
    with django_capture_on_commit_callbacks(execute=True):
        with_slot_taken = services.attempt_delivery(org.pk, mine.pk, schedule=schedule)
    assert with_slot_taken is None
    mine.refresh_from_db()
    assert (mine.status, mine.attempts, mine.attempt_log.count()) == (DeliveryStatus.PENDING, 0, 0)
    ((org_id, delivery_id, attempt, countdown),) = schedule.calls
    assert (org_id, delivery_id, attempt) == (org.pk, mine.pk, 1) and countdown >= services.DEFER_SECONDS
    # The other organization is not held up.
    services.attempt_delivery(other_org.pk, theirs.pk, schedule=schedule)
    theirs.refresh_from_db()
    assert theirs.status == DeliveryStatus.SUCCEEDED
    assert [r["path"] for r in receiver.requests] == ["/theirs"]
    # Once the slot is free, the re-queued try runs as attempt 1.
    outbound.release_slot(org.pk, busy)
    services.attempt_delivery(org.pk, mine.pk, attempt=1, schedule=schedule)
    mine.refresh_from_db()
    assert (mine.status, mine.attempts) == (DeliveryStatus.SUCCEEDED, 1)
    assert outbound.slots_held(org.pk) == 0


def test_demo_launcher_and_compose_consume_the_outbound_queue():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_demo", root / "scripts" / "run_demo.py")
    run_demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_demo)
    queues = [cmd[cmd.index("-Q") + 1] for cmd in (w["command"] for w in run_demo.WORKERS)]
    assert queues == ["celery", "outbound"]
    compose = (root / "docker-compose.yml").read_text()
    assert '"-Q", "celery"' in compose and '"-Q", "outbound"' in compose


# --- A real Celery worker on Redis (Postgres only, like tests/test_celery.py) ------------------------


def _real_broker_and_db() -> bool:
    from django.conf import settings

    return settings.CELERY_BROKER_URL.startswith("redis") and not settings.DATABASES["default"]["ENGINE"].endswith(
        "sqlite3"
    )


def requires_worker(test: Any) -> Any:
    """A real worker needs Redis and a database server; the test's rows must be committed for it."""
    for mark in (
        pytest.mark.skipif(not _real_broker_and_db(), reason="needs REDIS_URL and a Postgres DATABASE_URL"),
        pytest.mark.redis,
        pytest.mark.postgres,
        pytest.mark.worker,
        pytest.mark.django_db(transaction=True),
    ):
        test = mark(test)
    return test


def _worker(pool: str = "solo", concurrency: int = 1):
    """An in-process worker on a private queue that ``deliver_webhook`` and the event dispatch are routed to."""
    import contextlib
    import os
    import uuid

    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from cs_platform.celery import app

    queue = f"retain-hooks-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def close(**_: object) -> None:
        connections.close_all()

    @contextlib.contextmanager
    def running():
        saved = {key: app.conf[key] for key in ("task_always_eager", "worker_hijack_root_logger")}
        app.conf.update(task_always_eager=False, worker_hijack_root_logger=False)
        task_postrun.connect(close, weak=False)
        try:
            # The event dispatch (domain events → the webhook consumer) runs on the same worker.
            routes = {"playbooks.tasks.deliver_webhook": {"queue": queue}, "cs_platform.events.*": {"queue": queue}}
            with routed(app, routes):
                with start_worker(
                    app,
                    pool=pool,
                    concurrency=concurrency,
                    queues=[queue],
                    perform_ping_check=False,
                    shutdown_timeout=30,
                ) as w:
                    yield w
        finally:
            task_postrun.disconnect(close)
            app.conf.update(saved)

    return running()


@pytest.fixture
def webhook_worker():
    with _worker() as w:
        yield w


@pytest.fixture
def pooled_worker():
    """Three worker threads: enough for one organization to occupy them all without per-org limits."""
    with _worker(pool="threads", concurrency=3) as w:
        yield w


@requires_worker
def test_real_worker_retries_with_countdown_until_the_receiver_accepts(org, receiver, webhook_worker, monkeypatch):
    monkeypatch.setattr(services, "RETRY_DELAYS", (1, 1, 1, 1, 1))  # real countdowns, just short
    make_endpoint(org, receiver.url())
    receiver.statuses = [500, 500]
    AccountFactory(organization=org, name="Real worker Co")  # commits: post_save → event → on_commit → dispatch

    assert wait_for(lambda: WebhookDelivery.all_orgs.filter(organization=org).exists(), 30)  # made by the dispatch
    delivery = WebhookDelivery.all_orgs.get(organization=org)

    def final() -> bool:
        delivery.refresh_from_db()
        return delivery.is_final

    assert wait_for(final, 60)  # a generous bound, not a speed assertion
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 3)
    assert list(delivery.attempt_log.values_list("status_code", flat=True)) == [500, 500, 200]
    assert len(receiver.requests) == 3
    assert {b["data"]["name"] for b in receiver.bodies()} == {"Real worker Co"}


@requires_worker
def test_a_slow_receiver_of_one_org_does_not_hold_up_another_orgs_delivery(
    org, other_org, settings, monkeypatch, pooled_worker
):
    """Finding 5 with a real worker: org A sends four test events to a receiver that does not answer
    until released; org B's delivery, queued after them, must arrive while A's receiver is still
    holding its request. Without per-org limits A's four messages occupy all three worker threads
    and B waits for A's receiver."""
    import threading

    settings.OUTBOUND_ORG_CONCURRENCY = 1
    settings.OUTBOUND_TIMEOUT = 60  # the slow receiver is released by the test, not cut off
    monkeypatch.setattr(services, "DEFER_SECONDS", 0.5)
    slow, fast = Receiver(), Receiver()
    slow.hold = threading.Event()
    try:
        slow_endpoint = make_endpoint(org, slow.url("/slow"))
        make_endpoint(other_org, fast.url("/fast"), ["account.created"])
        for _ in range(4):
            services.send_test(slow_endpoint)  # commits at once: the messages are queued first
        assert wait_for(lambda: len(slow.requests) >= 1, 30)

        AccountFactory(organization=other_org, name="Not stalled Co")  # B's event, queued behind A's
        assert wait_for(lambda: len(fast.requests) == 1, 30), "org B's delivery was stalled by org A"
        assert not slow.hold.is_set() and slow.in_flight == 1  # A's receiver was still holding
        assert fast.bodies()[0]["data"]["name"] == "Not stalled Co"
        delivered_b = WebhookDelivery.all_orgs.get(organization=other_org)
        assert wait_for(lambda: WebhookDelivery.all_orgs.get(pk=delivered_b.pk).is_final, 30)

        slow.hold.set()  # A's receiver answers; its other tries run one at a time
        done = lambda: WebhookDelivery.all_orgs.filter(endpoint=slow_endpoint, status="succeeded").count() == 4  # noqa: E731
        assert wait_for(done, 60)
        assert len(slow.requests) == 4 and slow.max_in_flight == 1
        # Put-off tries are not attempts: each delivery succeeded at its first attempt.
        assert set(WebhookDelivery.all_orgs.filter(endpoint=slow_endpoint).values_list("attempts", flat=True)) == {1}
    finally:
        slow.close()
        fast.close()
