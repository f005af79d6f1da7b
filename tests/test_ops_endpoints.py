"""Health, readiness and metrics for load balancers and Prometheus (issue 16 §6; cs_platform/ops.py).

Readiness is checked against the real Postgres and Redis of the run (``DATABASE_URL``, ``REDIS_URL``), and
against a Redis that is down, simulated by pointing at a port nothing listens on. The queue depth is read
from messages Celery itself published to the Redis broker.
"""

from __future__ import annotations

import re
import socket
import uuid

import pytest
from django.conf import settings
from django.test import Client

from cs_platform.celery import app as celery_app
from cs_platform.choices import JobStatus
from cs_platform.organizations import JobRun
from playbooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

requires_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="REDIS_URL is not set: needs a real Redis")
requires_postgres = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), reason="needs DATABASE_URL=postgres://..."
)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name{labels}`` in a Prometheus exposition, or ``None``."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


# --- liveness and readiness ----------------------------------------------------------------------------


def test_healthz_answers_without_the_database_or_an_allowed_host(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client(HTTP_HOST="10.1.2.3").get("/healthz")  # a load balancer probes by address
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@requires_postgres
@requires_redis
@pytest.mark.postgres
@pytest.mark.redis
def test_readyz_is_ok_when_postgres_and_redis_answer(db):
    response = Client(HTTP_HOST="10.1.2.3").get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_readyz_is_503_with_json_naming_redis_when_redis_is_down(db, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    # The class of the failure, never its message (which names hosts and ports).
    assert body["checks"]["redis"] == "failed: ConnectionError"


def test_readyz_is_503_when_the_database_is_down(db, monkeypatch):
    from django.db import connection

    def refuse(*args, **kwargs):
        raise connection.Database.OperationalError("connection refused by 10.0.0.5")

    # The cursor fails the way a lost server does; Redis may or may not be configured in this run.
    with monkeypatch.context() as patch:
        patch.setattr(connection, "cursor", refuse)
        response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "failed: OperationalError"
    assert b"10.0.0.5" not in response.content


def test_readyz_reports_redis_as_not_configured_in_the_demo(db, settings):
    settings.REDIS_URL = ""
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "not configured"


def test_probes_take_only_get_and_head(db):
    assert Client().post("/healthz").status_code == 405
    assert Client().head("/readyz").status_code == 200


# --- metrics -------------------------------------------------------------------------------------------


@pytest.fixture
def metrics_token(settings) -> str:
    settings.METRICS_TOKEN = token = uuid.uuid4().hex
    return token


def scrape(token: str) -> str:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_metrics_need_the_token(db, metrics_token):
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Basic {metrics_token}").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {metrics_token}").status_code == 200


def test_metrics_without_a_token_are_off_in_production(db, settings):
    settings.METRICS_TOKEN = ""
    settings.PRODUCTION = True
    assert Client().get("/metrics").status_code == 404
    settings.PRODUCTION = False  # the demo: open (it listens on loopback)
    assert Client().get("/metrics").status_code == 200


def test_request_latency_is_a_histogram_per_view(db, metrics_token):
    labels = {"view": "login", "method": "GET", "status": "200"}
    before = sample(scrape(metrics_token), "retain_http_request_duration_seconds_count", **labels) or 0
    client = Client()
    assert client.get("/login/").status_code == 200
    assert client.get("/login/").status_code == 200
    client.get(f"/no-such-page-{uuid.uuid4().hex}/")  # unresolved paths share one label
    text = scrape(metrics_token)
    assert sample(text, "retain_http_request_duration_seconds_count", **labels) == before + 2
    assert sample(text, "retain_http_request_duration_seconds_bucket", **labels, le="+Inf") == before + 2
    assert "no-such-page" not in text


def test_failed_job_runs_are_counted_by_kind(org, other_org, metrics_token):
    for kind, status, organization in [
        ("import:accounts", JobStatus.FAILED, org),
        ("import:contacts", JobStatus.FAILED, other_org),
        ("recompute_health", JobStatus.FAILED, org),
        ("recompute_health", JobStatus.SUCCEEDED, org),
        ("import:accounts", JobStatus.RUNNING, org),
    ]:
        JobRun.all_orgs.create(organization=organization, kind=kind, status=status)
    text = scrape(metrics_token)
    # Both imports failed (2, across organizations); one of the two recomputes failed.
    assert sample(text, "retain_job_failures_total", kind="import") == 2
    assert sample(text, "retain_job_failures_total", kind="recompute_health") == 1


def test_failed_webhook_deliveries_are_counted_by_event_type(org, metrics_token):
    endpoint = WebhookEndpoint.all_orgs.create(
        organization=org, url="https://hooks.example.com/x", event_types=["account.created"], secret="s"
    )
    for status in (DeliveryStatus.FAILED, DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED, DeliveryStatus.RETRYING):
        WebhookDelivery.all_orgs.create(
            organization=org, endpoint=endpoint, event_type="account.created", event_id=uuid.uuid4(), status=status
        )
    text = scrape(metrics_token)
    assert sample(text, "retain_webhook_delivery_failures_total", kind="account.created") == 2  # retrying is not


@requires_redis
@pytest.mark.redis
def test_queue_depth_per_queue_is_read_from_the_redis_broker(db, settings, metrics_token):
    import redis

    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("the broker is not Redis")
    # Queues of this test only, so that no worker of another test takes the messages.
    default, outbound = f"test-default-{uuid.uuid4().hex[:8]}", f"test-outbound-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE, settings.OUTBOUND_QUEUE = default, outbound
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        for _ in range(3):
            celery_app.send_task("tests.no_such_task", queue=default)
        celery_app.send_task("tests.no_such_task", queue=default, priority=6)  # kombu keeps it in a sub-list
        celery_app.send_task("tests.no_such_task", queue=outbound)
        text = scrape(metrics_token)
        assert sample(text, "retain_celery_queue_length", queue=default) == 4
        assert sample(text, "retain_celery_queue_length", queue=outbound) == 1
        assert sample(text, "retain_celery_broker_up") == 1
    finally:
        for key in client.scan_iter(match="test-*"):
            if key.decode("utf-8", "replace").startswith((default, outbound)):
                client.delete(key)


def test_a_broker_that_is_down_is_reported_not_fatal(db, settings, metrics_token):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    text = scrape(metrics_token)
    assert sample(text, "retain_celery_broker_up") == 0
