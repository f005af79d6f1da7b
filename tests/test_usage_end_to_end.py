"""Issue #3 acceptance: the official Segment client sends 10,000 track events for 50 accounts; the daily
rollups read back through /api/v1/usage-metrics/ show the same counts per account and day; sending the
same batch again changes nothing."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from accounts.models import WriteKey
from accounts.services import create_organization
from health.rollups import rollup_usage
from tests.factories import AccountFactory

EVENTS = 10_000
USERS = 150
ACCOUNTS = 50


@pytest.fixture
def segment_session_closed():
    """Close the client's keep-alive session so the live server's threads end before the database drops."""
    yield
    from segment.analytics import request as segment_request

    segment_request._session.close()
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(5)


def metrics_from_api(api_client) -> dict[tuple[str, str, str], str]:
    rows: dict[tuple[str, str, str], str] = {}
    url = "/api/v1/usage-metrics/?page_size=500&metric=events&metric=active_users"
    while url:
        page = api_client.get(url).json()
        for row in page["results"]:
            rows[(row["account_external_id"], row["date"], row["metric"])] = row["value"]
        url = page["next"]
    return rows


@pytest.mark.django_db(transaction=True)
def test_segment_client_events_roll_up_to_the_same_counts_and_a_resend_changes_nothing(
    live_server, segment_session_closed, api
):
    from segment.analytics import Client as SegmentClient

    org = create_organization(slug="usage-e2e", name="Usage E2E")[0]
    accounts = [AccountFactory(organization=org, external_id=f"U-{i:02d}") for i in range(ACCOUNTS)]
    raw = WriteKey.issue(organization=org)[1]
    # ~76 days of history ending about a week ago (events dated in the future would be refused).
    today = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=84)

    def account_of(user: int) -> str:
        return accounts[user % ACCOUNTS].external_id

    # What the rollups must show: events per (account, UTC day) and distinct users per (account, day).
    events: Counter[tuple[str, str]] = Counter()
    users: dict[tuple[str, str], set[int]] = {}
    plan = []
    for i in range(EVENTS):
        user = (i * 7) % USERS
        when = start + timedelta(minutes=11 * i)  # ~76 days, crossing many midnights
        key = (account_of(user), when.date().isoformat())
        events[key] += 1
        users.setdefault(key, set()).add(user)
        plan.append((user, when, f"t-{i}"))

    def send() -> list:
        errors: list = []
        client = SegmentClient(raw, host=live_server.url, on_error=lambda e, b: errors.append(e), max_queue_size=20000)
        for user in range(USERS):
            client.group(f"user-{user}", account_of(user), message_id=f"g-{user}")
        client.flush()  # links before tracks, as a real app's sign-in would
        for user, when, message_id in plan:
            client.track(f"user-{user}", "Report Built", timestamp=when, message_id=message_id)
        client.flush()
        client.join()
        return errors

    assert send() == []
    rollup_usage(org.pk)
    client = api(org, "viewer")
    first = metrics_from_api(client)
    expected = {(a, d, "events"): str(n) for (a, d), n in events.items()}
    expected |= {(a, d, "active_users"): str(len(u)) for (a, d), u in users.items()}
    assert {k: v.split(".")[0] for k, v in first.items()} == expected

    assert send() == []  # the same messages again: deduplicated by messageId
    rollup_usage(org.pk)
    assert metrics_from_api(client) == first
