"""Outbound webhooks against a real HTTP receiver on 127.0.0.1 (no mocks of the network).

Retries are driven without waiting: the service's scheduler is injected and records each
``(attempt, countdown)``; the test then runs the recorded next try, exactly as Celery would after
the countdown. One test runs the whole chain through eager Celery instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from playbooks import services
from playbooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from playbooks.tasks import deliver_webhook

from .factories import AccountFactory

pytestmark = pytest.mark.django_db


class Receiver:
    """A real HTTP server answering with the next queued status (200 when the queue is empty)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                code = receiver.statuses.pop(0) if receiver.statuses else 200
                if 300 <= code < 400:
                    self.send_response(code)
                    self.send_header("Location", "http://example.com/elsewhere")
                    self.end_headers()
                    return
                reply = b'{"ok": true}' if code < 300 else b"boom"
                self.send_response(code)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def bodies(self, path: str | None = None) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests if path is None or r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


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
    assert log[0].error == "HTTP 500"
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
    assert delivery.last_status_code is None and "URLError" in delivery.last_error


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


# --- A real Celery worker on Redis (Postgres only, like tests/test_celery.py) ------------------------


@pytest.fixture
def webhook_worker():
    """An in-process worker on a private queue that ``deliver_webhook`` is routed to."""
    import os
    import uuid

    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun
    from django.db import connections

    from cs_platform.celery import app

    queue = f"retain-hooks-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def close(**_: object) -> None:
        connections.close_all()

    saved = {key: app.conf[key] for key in ("task_always_eager", "worker_hijack_root_logger", "task_routes")}
    app.conf.update(
        task_always_eager=False,
        worker_hijack_root_logger=False,
        task_routes={"playbooks.tasks.deliver_webhook": {"queue": queue}},
    )
    task_postrun.connect(close, weak=False)
    try:
        with start_worker(app, queues=[queue], perform_ping_check=False, shutdown_timeout=30) as w:
            yield w
    finally:
        task_postrun.disconnect(close)
        app.conf.update(saved)


def _real_broker_and_db() -> bool:
    from django.conf import settings

    return settings.CELERY_BROKER_URL.startswith("redis") and not settings.DATABASES["default"]["ENGINE"].endswith(
        "sqlite3"
    )


@pytest.mark.skipif(not _real_broker_and_db(), reason="needs REDIS_URL and a Postgres DATABASE_URL")
@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_real_worker_retries_with_countdown_until_the_receiver_accepts(org, receiver, webhook_worker, monkeypatch):
    import time

    monkeypatch.setattr(services, "RETRY_DELAYS", (1, 1, 1, 1, 1))  # real countdowns, just short
    make_endpoint(org, receiver.url())
    receiver.statuses = [500, 500]
    AccountFactory(organization=org, name="Real worker Co")  # commits: post_save → emit → on_commit → queue

    delivery = WebhookDelivery.all_orgs.get(organization=org)
    deadline = time.monotonic() + 60  # a generous bound, not a speed assertion
    while time.monotonic() < deadline:
        delivery.refresh_from_db()
        if delivery.is_final:
            break
        time.sleep(0.1)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SUCCEEDED, 3)
    assert list(delivery.attempt_log.values_list("status_code", flat=True)) == [500, 500, 200]
    assert len(receiver.requests) == 3
    assert {b["data"]["name"] for b in receiver.bodies()} == {"Real worker Co"}
