"""Throttling over a simulated year of weekly recurring sends, with a frozen clock moved one week at a time
(issue 13 acceptance): no contact is ever surveyed twice within the organization's throttle window.

With the default 90 days and a run every 7 days, a contact is invited at the first run and then at the
first run more than 90 days after (day 91 = week 13), so on days 0, 91, 182, 273 and 364: 5 invitations
in 53 weekly runs, 48 throttled skips each. A second weekly send to the same contacts (another survey)
shares the window: it never adds an invitation inside it. A 30-day throttle gives an invitation every
35 days (day 0, 35, …, 350: 11)."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise

import pytest
import time_machine
from django.core import mail

from feedback.models import InvitationStatus, SurveyInvitation
from feedback.services import THROTTLED, create_send, run_due_sends, survey_settings

from .factories import AccountFactory, ContactFactory
from .survey_factories import make_survey

pytestmark = pytest.mark.django_db
START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def simulate(org, weeks: int) -> None:
    for week in range(weeks):
        with time_machine.travel(START + dt.timedelta(weeks=week), tick=False):
            run_due_sends(org.pk)


def sent_days(contact) -> list[int]:
    moments = SurveyInvitation.all_orgs.filter(contact=contact).exclude(status=InvitationStatus.SKIPPED)
    return sorted((m - START).days for m in moments.values_list("sent_at", flat=True))


def test_a_year_of_weekly_sends_respects_the_90_day_throttle(org):
    account = AccountFactory(organization=org)
    contacts = [ContactFactory(account=account) for _ in range(3)]
    with time_machine.travel(START, tick=False):
        weekly = create_send(make_survey(org), account=account, schedule="recurring", interval_weeks=1)
        other = create_send(make_survey(org, "csat"), account=account, schedule="recurring", interval_weeks=1)
    simulate(org, 53)
    weekly.refresh_from_db()
    assert weekly.run_count == 53 and weekly.status == "active"
    for contact in contacts:
        days = sent_days(contact)
        assert all(later - earlier > 90 for earlier, later in pairwise(days)), days
        assert days == [0, 91, 182, 273, 364]
    # Of the two sends, each run invites a contact through one only; the rest is recorded as throttled.
    throttled = SurveyInvitation.all_orgs.filter(skip_reason=THROTTLED).count()
    assert throttled == 2 * 53 * 3 - 5 * 3
    assert len(mail.outbox) == 15
    assert {m.to[0] for m in mail.outbox} == {c.email for c in contacts}
    assert other.pk  # both sends ran every week
    assert SurveyInvitation.all_orgs.filter(send=other).values("run").distinct().count() == 53


def test_the_throttle_is_editable_per_organization(org, other_org):
    config = survey_settings(org.pk)
    config.throttle_days = 30
    config.save()
    account = AccountFactory(organization=org)
    contact = ContactFactory(account=account)
    with time_machine.travel(START, tick=False):
        create_send(make_survey(org), account=account, schedule="recurring", interval_weeks=1)
    simulate(org, 53)
    assert sent_days(contact) == list(range(0, 365, 35))
    assert survey_settings(other_org.pk).throttle_days == 90  # another organization keeps the default


def test_a_late_beat_runs_once_then_keeps_the_weekly_rhythm(org):
    account = AccountFactory(organization=org)
    ContactFactory(account=account)
    with time_machine.travel(START, tick=False):
        send = create_send(make_survey(org), account=account, schedule="recurring", interval_weeks=1)
        run_due_sends(org.pk)
    with time_machine.travel(START + dt.timedelta(weeks=3, days=2), tick=False):
        run_due_sends(org.pk)
        run_due_sends(org.pk)  # twice: idempotent
    send.refresh_from_db()
    assert send.run_count == 2
    assert send.next_run_at == START + dt.timedelta(weeks=4)


def test_the_beat_queues_one_recorded_run_per_organization_with_something_due(org, other_org, monkeypatch):
    from accounts.models import JobRun
    from feedback import tasks

    queued = []
    monkeypatch.setattr(tasks.run_survey_sends, "delay", lambda org_id, **kw: queued.append((org_id, kw["job_id"])))
    account = AccountFactory(organization=org)
    ContactFactory(account=account)
    AccountFactory(organization=other_org)  # nothing due there
    with time_machine.travel(START, tick=False):
        create_send(make_survey(org), account=account)
        assert tasks.run_all_survey_sends() == 1
    assert [org_id for org_id, _job in queued] == [org.pk]
    job = JobRun.all_orgs.get(pk=queued[0][1])
    with time_machine.travel(START, tick=False):
        counts = tasks.run_survey_sends(org.pk, job_id=job.pk)
        again = tasks.run_survey_sends(org.pk)  # idempotent: nothing left to do
    assert counts == {"runs": 1, "delivered": 1} and again == {"runs": 0, "delivered": 0}
    job.refresh_from_db()
    assert job.status == "succeeded", job.status
