"""The load test's traffic (locust): who visits what, how often, and what counts as an error.

Run by ``python -m benchmarks.load`` (benchmarks/README.md, "Load"), which prepares the database, starts
gunicorn and a Celery worker, and hands this file the organization's details in a JSON file named by
``RETAIN_LOAD_CONFIG`` (slug, passwords, account ids, the API key and the write key).

The mix, by virtual users (``weight``) and by task within each user (``@task(n)``):

- ``CsmUser`` (6): signs in through the login form (CSRF token from the form), then browses My book,
  Account 360 of an account of their book, and the work queue; 1–3 s of thinking between pages.
- ``LeaderUser`` (2): signs in, then the Portfolio and the Renewals page; 1–3 s between pages.
- ``ApiUser`` (2): the REST API with a Bearer API key: lists accounts (filtered, ordered) and upserts
  accounts by external id (``PUT /api/v1/accounts/external/<id>/``, existing and new ones); 0.5–2 s.
- ``IngestUser`` (1): Segment's ``/v1/batch`` with the write key as HTTP Basic user name and an empty
  password, batches of ``BATCH_EVENTS`` identify/group/track events; 1–2 s between batches, like a
  server-side Segment library flushing its queue.

Every request is checked (status code and a marker of the page or payload); anything else, 429 included,
is a failure in locust's statistics, and the harness exits non-zero on any failure.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any

from locust import HttpUser, between, task

BATCH_EVENTS = 20
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

# Request names as they appear in locust's statistics (parameterised URLs grouped under one name).
LOGIN_FORM = "login: GET /login/"
LOGIN_SUBMIT = "login: POST /login/"
MY_BOOK = "csm: My book /o/[org]/"
ACCOUNT_360 = "csm: Account 360 /o/[org]/accounts/[id]/"
WORK_QUEUE = "csm: work queue /o/[org]/work/"
PORTFOLIO = "leader: Portfolio /o/[org]/portfolio/"
RENEWALS = "leader: Renewals /o/[org]/renewals/"
API_LIST = "api: GET /api/v1/accounts/?[filters]"
API_UPSERT = "api: PUT /api/v1/accounts/external/[id]/"
INGEST_BATCH = "segment: POST /v1/batch"
REQUEST_NAMES = (
    LOGIN_FORM,
    LOGIN_SUBMIT,
    MY_BOOK,
    ACCOUNT_360,
    WORK_QUEUE,
    PORTFOLIO,
    RENEWALS,
    API_LIST,
    API_UPSERT,
    INGEST_BATCH,
)

API_LIST_QUERIES = (
    "ordering=-arr",
    "touch_model=high&ordering=-arr",
    "q=a&ordering=name",
    "lifecycle_stage=renewal&ordering=next_renewal_date",
)


@cache
def config() -> dict[str, Any]:
    """The organization the harness prepared (read once per locust process)."""
    with open(os.environ["RETAIN_LOAD_CONFIG"], encoding="utf-8") as handle:
        return json.load(handle)


def _expect(response: Any, status: int, marker: str | None = None) -> None:
    """Mark a ``catch_response`` response failed unless it has ``status`` (and ``marker`` in its body)."""
    if response.status_code != status:
        response.failure(f"HTTP {response.status_code}, expected {status}")
    elif marker is not None and marker not in response.text:
        response.failure(f"{marker!r} not in the response")
    else:
        response.success()


class _SignedInUser(HttpUser):
    """A person signing in through the login form, as a browser does (session and CSRF cookies)."""

    abstract = True
    wait_time = between(1, 3)
    role = ""

    def on_start(self) -> None:
        people = config()["people"][self.role]
        self.person = random.choice(people)
        self.slug = config()["slug"]
        with self.client.get("/login/", name=LOGIN_FORM, catch_response=True) as response:
            found = CSRF_FIELD.search(response.text)
            if response.status_code != 200 or not found:
                response.failure(f"HTTP {response.status_code}, no CSRF token in the form")
                return
            response.success()
        form = {"username": self.person["email"], "password": config()["password"], "csrfmiddlewaretoken": found[1]}
        headers = {"Referer": f"{self.host}/login/"}
        with self.client.post(
            "/login/", data=form, headers=headers, name=LOGIN_SUBMIT, allow_redirects=False, catch_response=True
        ) as response:
            # Success is a redirect away from the login page; a wrong password re-renders it with a 200.
            if response.status_code == 302 and "sessionid" in self.client.cookies:
                response.success()
            else:
                response.failure(f"sign-in refused: HTTP {response.status_code}")

    def page(self, path: str, name: str, marker: str = "<main") -> None:
        with self.client.get(path, name=name, catch_response=True, allow_redirects=False) as response:
            _expect(response, 200, marker)


class CsmUser(_SignedInUser):
    """A CSM's morning: their book, an account's 360, the work queue."""

    weight = 6
    role = "csm"

    @task(4)
    def my_book(self) -> None:
        self.page(f"/o/{self.slug}/", MY_BOOK)

    @task(4)
    def account_360(self) -> None:
        account_id = random.choice(self.person["accounts"] or config()["accounts"])
        self.page(f"/o/{self.slug}/accounts/{account_id}/", ACCOUNT_360)

    @task(2)
    def work_queue(self) -> None:
        self.page(f"/o/{self.slug}/work/", WORK_QUEUE)


class LeaderUser(_SignedInUser):
    """A leader reviewing the Portfolio and the renewals ahead."""

    weight = 2
    role = "leader"

    @task(1)
    def portfolio(self) -> None:
        self.page(f"/o/{self.slug}/portfolio/", PORTFOLIO)

    @task(1)
    def renewals(self) -> None:
        self.page(f"/o/{self.slug}/renewals/", RENEWALS)


class ApiUser(HttpUser):
    """An integration (a CRM sync, a data pipeline) on the REST API with an admin API key."""

    weight = 2
    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {config()['api_key']}"
        self.client.headers["Accept"] = "application/json"

    @task(3)
    def list_accounts(self) -> None:
        query = random.choice(API_LIST_QUERIES)
        with self.client.get(f"/api/v1/accounts/?{query}", name=API_LIST, catch_response=True) as response:
            _expect(response, 200, '"results"')

    @task(1)
    def upsert_account(self) -> None:
        # Half updates of a seeded account (200), half a small pool of the integration's own accounts
        # (201 the first time, 200 after): both paths of the upsert, and domain events for the worker.
        if random.random() < 0.5:
            external_id = random.choice(config()["external_ids"])
            body: dict[str, Any] = {"employees": random.randint(10, 5000)}
        else:
            external_id = f"LOAD-{random.randrange(200):04d}"
            body = {"name": f"Load test account {external_id}", "employees": random.randint(10, 5000)}
        with self.client.put(
            f"/api/v1/accounts/external/{external_id}/", json=body, name=API_UPSERT, catch_response=True
        ) as response:
            if response.status_code in (200, 201) and '"external_id"' in response.text:
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")


class IngestUser(HttpUser):
    """A product's backend sending usage events through a Segment library (``/v1/batch``)."""

    weight = 1
    wait_time = between(1, 2)

    def on_start(self) -> None:
        token = base64.b64encode(f"{config()['write_key']}:".encode()).decode()
        self.client.headers["Authorization"] = f"Basic {token}"

    @task
    def batch(self) -> None:
        headers = {"Content-Type": "application/json"}
        with self.client.post(
            "/v1/batch", data=batch_body(), headers=headers, name=INGEST_BATCH, catch_response=True
        ) as response:
            _expect(response, 200, '"success"')


def batch_body(events: int = BATCH_EVENTS) -> bytes:
    """A Segment batch: a ``group`` call tying a user to a seeded account, then that user's ``track`` events."""
    now = datetime.now(UTC).isoformat()
    external_ids = config()["external_ids"]
    batch: list[dict[str, Any]] = []
    while len(batch) < events:
        user = f"user-{random.randrange(2000):05d}"
        account = random.choice(external_ids)
        batch.append({"type": "group", "messageId": str(uuid.uuid4()), "userId": user, "groupId": account})
        for _ in range(min(4, events - len(batch))):
            batch.append(
                {
                    "type": "track",
                    "messageId": str(uuid.uuid4()),
                    "userId": user,
                    "event": random.choice(["Report Built", "Dashboard Viewed", "Export Created", "Search Run"]),
                    "timestamp": now,
                    "properties": {"plan": "pro"},
                    "context": {"groupId": account, "library": {"name": "analytics-python", "version": "2.4.0"}},
                }
            )
    return json.dumps({"batch": batch[:events], "sentAt": now}).encode()
