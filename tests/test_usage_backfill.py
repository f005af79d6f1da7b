"""Issue 10 acceptance: backfilled usage is never dropped, and it is seen without waiting for the beat.

On Postgres with a real Redis broker and a real Celery worker (in this process, on its own queue): events
dated 200 days ago and yesterday, for an organization keeping raw events 90 days, are sent through
``/v1/batch``; nothing else runs the rollup, so the ingest itself must queue it. Every figure of
``/api/v1/usage-metrics/`` must equal the reference computation; then late events for the same old day
(users already counted and new ones) arrive, with or without the purge of raw events in between, and
the figures must stay exact. The waits are generous bounds, not speed assertions (benchmarks/ measure
the latency).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.db import connections
from django.test import Client
from django.utils import timezone

from accounts.choices import JobStatus
from accounts.models import JobRun, WriteKey
from accounts.services import create_organization
from cs_platform.celery import app
from health.models import HealthScore, HealthSnapshot, UsageEvent
from health.tasks import purge_raw_events_task

from .factories import AccountFactory
from .outbound_helpers import routed
from .usage_reference import Ev, reference

QUEUE = f"retain-usage-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
ZONE = "America/New_York"

needs_worker = [
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith("redis"),
        reason="REDIS_URL is not set: this test needs a real Redis broker and worker",
    ),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
        reason="the in-process worker needs a database server (DATABASE_URL=postgres://...), not SQLite",
    ),
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


def _close_connections(**_: object) -> None:
    connections.close_all()  # the worker thread's connections must not outlive it


@pytest.fixture
def worker() -> Iterator[object]:
    """A real worker consuming a queue of its own, to which every health task is routed."""
    saved = {key: app.conf[key] for key in ("task_always_eager", "worker_hijack_root_logger")}
    app.conf.update(task_always_eager=False, worker_hijack_root_logger=False)
    task_postrun.connect(_close_connections, weak=False)
    try:
        # routed() also drops Celery's cached router: settings' own routes (the outbound queue) would
        # otherwise keep sending the rollup to the default queue, which no worker of this test reads.
        with routed(app, {"health.tasks.*": {"queue": QUEUE}}):
            with start_worker(app, queues=[QUEUE], perform_ping_check=False, shutdown_timeout=30) as w:
                yield w
    finally:
        task_postrun.disconnect(_close_connections)
        app.conf.update(saved)


def wait_for(check: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last is True:
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: still not true after {timeout}s; last check gave {last!r}")


def send(key: str, events: list[dict]) -> dict:
    response = Client().post(
        "/v1/batch",
        data=json.dumps({"batch": events, "sentAt": timezone.now().isoformat()}),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{key}:".encode()).decode(),
    )
    assert response.status_code == 200, response.content
    return response.json()


def as_json(events: list[Ev], offset: int) -> list[dict]:
    out = []
    for i, e in enumerate(events):
        out.append(
            {
                "type": "track",
                "messageId": f"t-{offset + i}",
                "event": e.name,
                "userId": e.user,
                "timestamp": e.when.isoformat(),
                **({"anonymousId": e.anonymous} if e.anonymous else {}),
            }
        )
    return out


def groups(links: dict[str, str], offset: int) -> list[dict]:
    return [
        {"type": "group", "messageId": f"g-{offset + i}", "userId": user, "groupId": account}
        for i, (user, account) in enumerate(sorted(links.items()))
    ]


def api_metrics(client) -> dict:
    rows = {}
    url = "/api/v1/usage-metrics/?page_size=500"
    while url:
        page = client.get(url).json()
        for row in page["results"]:
            rows[(row["account_external_id"], dt.date.fromisoformat(row["date"]), row["metric"])] = Decimal(
                row["value"]
            )
        url = page["next"]
    return rows


def needs_a_worker(test):
    """Every mark of :data:`needs_worker` on one test (a list indexed by hand broke when a mark was added)."""
    for mark in reversed(needs_worker):
        test = mark(test)
    return test


def local_days_ago(n: int, hour: int) -> dt.datetime:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(ZONE)
    day = timezone.now().astimezone(tz).date() - dt.timedelta(days=n)
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=tz)


@pytest.mark.parametrize("purge_between", [False, True], ids=["late_events", "late_events_after_the_purge"])
@needs_a_worker
def test_backfilled_and_recent_usage_is_counted_exactly_through_the_worker(worker, api, purge_between):
    org = create_organization(slug=f"backfill-{int(purge_between)}", name="Backfill")[0]
    org.raw_event_retention_days = 90
    org.time_zone = ZONE
    org.save()
    AccountFactory(organization=org, external_id="A")
    AccountFactory(organization=org, external_id="B")
    key = WriteKey.issue(organization=org)[1]
    client = api(org, "viewer")
    old, old_late = local_days_ago(200, 9), local_days_ago(200, 23)  # 23:00 local: the next day in UTC

    first = [
        Ev("A", "u1", old, "Login"),
        Ev("A", "u1", old.replace(hour=10), "Report Built"),
        Ev("A", "u2", old.replace(hour=11), "Report Built"),
        Ev("A", "u3", old_late, "Login"),
        Ev("B", "u4", old.replace(hour=12), "Export"),
        Ev("A", "u1", local_days_ago(1, 0), "Login"),  # yesterday, in its first local hour
        Ev("B", "u4", local_days_ago(1, 15), "Export"),
    ]
    links = {"u1": "A", "u2": "A", "u3": "A", "u4": "B", "u5": "A"}
    send(key, groups({u: a for u, a in links.items() if u != "u5"}, 0) + as_json(first, 0))
    expected = reference(first, ZONE)
    wait_for(lambda: api_metrics(client) == expected or api_metrics(client), "first batch in /api/v1/usage-metrics/")
    wait_for(
        lambda: HealthScore.objects.for_org(org).count() == 2 or HealthScore.objects.for_org(org).count(),
        "the touched accounts rescored",
    )
    history = JobRun.objects.for_org(org).filter(kind="rescore_usage_history")
    wait_for(
        lambda: history.filter(status=JobStatus.SUCCEEDED).exists() or list(history.values("status", "errors")),
        "the past days rescored",
    )

    if purge_between:
        # As if the first batch had been received 100 days ago: past retention, so the purge deletes it.
        UsageEvent.objects.for_org(org).update(received_at=timezone.now() - dt.timedelta(days=100))
        purge_raw_events_task.delay(org.pk)
        wait_for(lambda: not UsageEvent.objects.for_org(org).exists(), "the purge ran on the worker")

    late = [
        Ev("A", "u1", old.replace(hour=18), "Login"),  # already counted that day: distinct counts stay
        Ev("A", "u5", old.replace(hour=19), "Login"),  # a new user of that old day
        Ev("A", "u3", old_late.replace(minute=30), "Export"),
        Ev("B", "u4", local_days_ago(1, 16), "Export"),
    ]
    send(key, groups({"u5": "A"}, 100) + as_json(late, 100))
    expected = reference(first + late, ZONE)
    wait_for(lambda: api_metrics(client) == expected or api_metrics(client), "late events in /api/v1/usage-metrics/")
    # The reference itself, spelled out for the old day: u1 again does not count twice.
    assert expected[("A", old.date(), "active_users")] == 4  # u1, u2, u3, u5
    assert expected[("A", old.date(), "event:Login")] == 4  # u1 at 9:00 and 18:00, u3 at 23:00, u5


@pytest.mark.django_db
def test_usage_of_past_days_recomputes_the_snapshots_that_read_it(org):
    """Backfill the health history: a past day's usage changes the snapshots of the 60 days that read it
    (and only those); today's score follows. Runs the task body inline (no worker needed)."""
    from health.rollups import rescore_usage_history
    from health.services import recompute_health
    from tests.factories import ContractFactory

    account = AccountFactory(organization=org, external_id="A")
    ContractFactory(account=account, seats=10, start_date=dt.date(2020, 1, 1), end_date=dt.date(2099, 12, 31))
    today = timezone.localdate()
    changed = today - dt.timedelta(days=100)
    days = [changed - dt.timedelta(days=1), changed, changed + dt.timedelta(days=59), changed + dt.timedelta(days=60)]
    for day in days:
        recompute_health(org, [account.pk], as_of=day, latest=False, emit_events=False)
    before = dict(HealthSnapshot.objects.for_org(org).values_list("date", "components"))
    from health.models import UsageMetric

    UsageMetric.all_orgs.create(organization=org, account=account, date=changed, metric="active_users", value=5)
    counts = rescore_usage_history(org.pk, [[account.pk, changed.isoformat(), changed.isoformat()]])
    assert counts == {"days": 2, "snapshots": 2, "accounts": 1}
    after = dict(HealthSnapshot.objects.for_org(org).values_list("date", "components"))

    def adoption(components):
        return next((c["value"] for c in components if c["key"] == "adoption"), None)

    assert adoption(after[changed]) == pytest.approx(0.5) != adoption(before[changed])
    # The last day whose 60-day lookback reads it: usage is now tracked (adoption 0 over the last 30
    # days) where it was missing.
    assert (adoption(before[days[2]]), adoption(after[days[2]])) == (None, 0.0)
    assert after[days[0]] == before[days[0]] and after[days[3]] == before[days[3]]  # outside: untouched
    assert HealthScore.objects.for_org(org).filter(account=account).exists()  # today's score follows
