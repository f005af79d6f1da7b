"""Email to the timeline, the acceptance (issue 21 item 5) with everything real: the management command's
aiosmtpd Controller on a loopback port, ``smtplib`` delivering to it, the task travelling through Redis to a
``celery worker`` subprocess against the test database, and the debounced health recompute on that worker.

* A message delivered to the listener is on the right account's timeline within 60 s, and its
  engagement signal moves (the recompute's countdown shortened to 1 s on the worker).
* The same ``Message-ID`` again changes nothing; an unknown sender lands in the unmatched inbox.
"""

from __future__ import annotations

import datetime as dt
import smtplib

import pytest
from django.utils import timezone

from accounts.models import Activity
from health import triggers
from health.models import HealthSnapshot
from health.services import recompute_health
from integrations import email_capture as ec
from integrations.choices import CapturedEmailStatus, InboundOutcome
from integrations.models import CapturedEmail, InboundEmail
from tests import worker_process

from .email_capture_helpers import listener, message
from .factories import AccountFactory, ContactFactory, MembershipFactory, UserFactory

pytestmark = [*worker_process.WORKER_MARKS, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(monkeypatch):
    with worker_process.own_queue(monkeypatch, "retain-email-test") as name:
        yield name


@pytest.fixture
def worker(queue, tmp_path):
    with worker_process.running(queue, tmp_path, HEALTH_RECOMPUTE_DEBOUNCE_SECONDS="1") as started:
        yield started


def engagement(account) -> float | None:
    snapshot = HealthSnapshot.all_orgs.filter(account=account).order_by("-date", "-computed_at").first()
    if snapshot is None:
        return None
    return next((c.get("value") for c in snapshot.components if c.get("signal") == "engagement"), None)


def test_delivered_message_reaches_the_timeline_and_moves_engagement(org, worker, settings):
    _process, log = worker
    settings.HEALTH_RECOMPUTE_DEBOUNCE_SECONDS = 1
    MembershipFactory(organization=org, role="csm", user=UserFactory(username="cs@acme.test"))
    capture = ec.ensure_capture(org)
    address = ec.capture_address(capture)
    account = AccountFactory(
        organization=org, domain="customer.example", customer_since=timezone.localdate() - dt.timedelta(days=90)
    )
    ContactFactory(account=account, email="jane@customer.example")
    recompute_health(org)
    triggers._redis().delete(*triggers._keys(org.pk))  # the setup's own scheduled recompute is not the proof
    before = engagement(account)
    assert before is not None and before >= 2.9  # 90 days without a touch on a 30-day cadence

    msg = message(sender="jane@customer.example", to="cs@acme.test", cc=address, message_id="<accept-1@mail.example>")
    with listener() as (host, port), smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.sendmail("cs@acme.test", [address], msg.as_bytes())
        worker_process.wait(
            lambda: Activity.all_orgs.filter(account=account, type="email").exists(), 60, "the email activity", log
        )
        worker_process.wait(lambda: engagement(account) == 0, 60, "the engagement signal to move", log)
        assert engagement(account) == 0

        # The same Message-ID again: processed on the worker as a duplicate, nothing else changes.
        smtp.sendmail("cs@acme.test", [address], msg.as_bytes())
        worker_process.wait(
            lambda: InboundEmail.all_orgs.filter(outcome=InboundOutcome.DUPLICATE).exists(), 60, "the duplicate", log
        )
        assert Activity.all_orgs.filter(organization=org).count() == 1

        # An unknown sender: the unmatched inbox, no activity.
        stranger = message(sender="who@unknown.example", to="cs@acme.test", cc=address)
        smtp.sendmail("who@unknown.example", [address], stranger.as_bytes())
        worker_process.wait(
            lambda: CapturedEmail.all_orgs.filter(status=CapturedEmailStatus.UNMATCHED).exists(), 60, "unmatched", log
        )
    assert Activity.all_orgs.filter(organization=org).count() == 1
    assert worker_process.succeeded(log, "integrations.tasks.process_inbound_email") == 3
