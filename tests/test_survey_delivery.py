"""Survey emails when the mail server fails midway, two runs of one organization at once, and the API's send
that never runs inside the request (code review of the voice-of-the-customer work, items 1, 2 and 4)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, connections
from django.utils import timezone

from accounts.services import create_organization
from feedback import services
from feedback.models import InvitationStatus, SurveyInvitation, SurveySend
from feedback.services import (
    MAX_SEND_ATTEMPTS,
    SEND_FAILED,
    THROTTLED,
    create_send,
    deliver_due_invitations,
    run_send,
    send_counts,
)

from .factories import AccountFactory, ContactFactory
from .mail_backends import PATH, FlakyBackend
from .survey_factories import make_survey

pytestmark = pytest.mark.django_db


@pytest.fixture
def flaky(settings):
    settings.EMAIL_BACKEND = PATH
    FlakyBackend.budget = None
    yield FlakyBackend
    FlakyBackend.budget = None


def statuses(send) -> dict[int, str]:
    return dict(SurveyInvitation.all_orgs.filter(send=send).values_list("contact_id", "status"))


# --- 1. A mail server failing midway ------------------------------------------------------------------


def test_emails_sent_before_a_mail_server_failure_stay_sent_and_a_retry_sends_only_the_rest(org, flaky):
    account = AccountFactory(organization=org)
    contacts = [ContactFactory(account=account) for _ in range(6)]
    send = create_send(make_survey(org), account=account)
    flaky.budget = 2  # the server takes two emails, then drops every connection
    result = run_send(send)
    assert result.invited == 6 and result.delivered == 2
    assert len(mail.outbox) == 2
    sent = SurveyInvitation.all_orgs.filter(send=send, status=InvitationStatus.SENT)
    assert sent.count() == 2 and all(i.token_hash and i.sent_at for i in sent)
    # The three that failed are back to scheduled with their error; after three failures in a row the pass
    # paused, so the sixth was not even tried.
    waiting = SurveyInvitation.all_orgs.filter(send=send, status=InvitationStatus.SCHEDULED)
    assert sorted(waiting.values_list("attempts", flat=True)) == [0, 1, 1, 1]
    assert all("SMTPServerDisconnected" in i.last_error for i in waiting.filter(attempts=1))
    assert not waiting.filter(token_hash__isnull=False).exists()
    send.refresh_from_db()
    assert "3 email(s) could not be sent" in send.delivery_problem and "paused" in send.delivery_problem
    counts = send_counts(org.pk, [send.pk])[send.pk]
    assert counts["sent"] == 2 and counts["scheduled"] == 4 and counts["failing"] == 3
    # The server is back: the next pass (the beat's) sends the four others, and nobody gets a second email.
    flaky.budget = None
    assert deliver_due_invitations(org.pk) == 4
    assert sorted(m.to[0] for m in mail.outbox) == sorted(c.email for c in contacts)
    send.refresh_from_db()
    assert send.delivery_problem == ""
    assert set(statuses(send).values()) == {InvitationStatus.SENT}
    assert send_counts(org.pk, [send.pk])[send.pk]["failing"] == 0


def test_an_email_refused_again_and_again_is_given_up_and_counted(org, flaky, api):
    contact = ContactFactory(account__organization=org)
    send = create_send(make_survey(org), account=contact.account)
    flaky.budget = 0
    run_send(send)
    for _ in range(MAX_SEND_ATTEMPTS - 1):
        assert deliver_due_invitations(org.pk) == 0
    invitation = SurveyInvitation.all_orgs.get(send=send)
    assert invitation.status == InvitationStatus.SKIPPED and invitation.skip_reason == SEND_FAILED
    assert invitation.attempts == MAX_SEND_ATTEMPTS
    body = api(org, "admin").get(f"/api/v1/survey-sends/{send.pk}/").json()
    assert body["counts"]["skipped"] == {SEND_FAILED: 1} and body["counts"]["failing"] == 0
    assert "could not be sent" in body["delivery_problem"]
    assert mail.outbox == []


def test_the_survey_page_shows_the_delivery_problem(client, org, alice, flaky):
    account = AccountFactory(organization=org)
    ContactFactory(account=account)
    survey = make_survey(org)
    send = create_send(survey, account=account)
    flaky.budget = 0
    run_send(send)
    client.force_login(alice)
    page = client.get(f"/o/{org.slug}/admin/surveys/{survey.pk}/").content.decode()
    assert f'data-testid="send-delivery-problem-{send.pk}"' in page and "could not be sent" in page
    assert f'data-testid="send-failing-{send.pk}"' in page


# --- 2. Two runs of one organization at once ----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_never_invite_one_contact_twice(monkeypatch):
    """Two sends of two surveys reaching the same contact run in two connections at once. Without the organization's run
    lock both read "not surveyed" before either commits, and both invite; with it the second waits for the
    first to commit, reads its invitation and throttles."""
    if connection.vendor != "postgresql":
        pytest.skip("needs two real connections (Postgres)")
    org = create_organization(slug="race-sends", name="Race")[0]
    contact = ContactFactory(account=AccountFactory(organization=org))
    # Two surveys (an NPS and a CSAT): sends of one survey already wait for each other (the run locks its
    # survey's row with its send's).
    sends = [create_send(make_survey(org, kind), account=contact.account) for kind in ("nps", "csat")]
    services.survey_settings(org.pk)  # made before (its first insert would make the second run wait too)
    barrier, errors = threading.Barrier(2), []
    real = services.surveyed_since

    def surveyed_then_wait(*args, **kwargs):
        found = real(*args, **kwargs)
        try:  # both threads read before either writes, unless the lock keeps the second out
            barrier.wait(timeout=3)
        except threading.BrokenBarrierError:
            pass
        return found

    monkeypatch.setattr(services, "surveyed_since", surveyed_then_wait)

    def run(send: SurveySend) -> None:
        try:
            run_send(SurveySend.all_orgs.get(pk=send.pk), deliver=False)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(send,)) for send in sends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = SurveyInvitation.all_orgs.filter(contact=contact)
    assert rows.count() == 2
    assert rows.filter(status=InvitationStatus.SCHEDULED).count() == 1
    assert rows.filter(status=InvitationStatus.SKIPPED, skip_reason=THROTTLED).count() == 1


# --- 4. The API never runs a send inside the request ---------------------------------------------------


def test_an_api_send_to_one_account_is_queued_and_answers_202(
    api, org, bob, flaky, monkeypatch, django_capture_on_commit_callbacks
):
    from accounts.models import JobRun
    from cs_platform.celery import app as celery_app
    from feedback.services import run_due_sends

    queued = []
    task = celery_app.tasks["feedback.tasks.run_survey_sends"]
    monkeypatch.setattr(task, "delay", lambda *args, **kwargs: queued.append((args, kwargs)))
    account = AccountFactory(organization=org, owner=bob)
    ContactFactory(account=account)
    flaky.budget = 0  # even a mail server that is down cannot fail the request: it sends nothing
    with django_capture_on_commit_callbacks(execute=True):
        created = api(org, "csm", bob).post(
            "/api/v1/survey-sends/", {"survey": make_survey(org).pk, "account": account.pk}, format="json"
        )
    assert created.status_code == 202, created.json()
    body = created.json()
    assert created["Location"].endswith(f"/api/v1/survey-sends/{body['id']}/")
    assert body["run_count"] == 0 and body["status"] == "scheduled"
    assert SurveyInvitation.all_orgs.count() == 0 and mail.outbox == []
    assert len(queued) == 1 and queued[0][0] == (org.pk,)
    job = JobRun.all_orgs.get(pk=queued[0][1]["job_id"])
    assert job.kind == "run_survey_sends" and job.organization_id == org.pk
    flaky.budget = None
    run_due_sends(org.pk)  # what the queued task does
    assert len(mail.outbox) == 1
    assert SurveySend.all_orgs.get(pk=body["id"]).run_count == 1


def test_a_broker_that_is_down_does_not_fail_the_request(api, org, monkeypatch, django_capture_on_commit_callbacks):
    from cs_platform.celery import app as celery_app

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(celery_app.tasks["feedback.tasks.run_survey_sends"], "delay", broker_down)
    account = AccountFactory(organization=org)
    with django_capture_on_commit_callbacks(execute=True):
        created = api(org, "admin").post(
            "/api/v1/survey-sends/", {"survey": make_survey(org).pk, "account": account.pk}, format="json"
        )
    assert created.status_code == 202
    # The send is there, due: the beat runs it within five minutes.
    send = SurveySend.all_orgs.get(pk=created.json()["id"])
    assert send.next_run_at is not None and send.next_run_at <= timezone.now() + timedelta(seconds=1)


def test_a_send_for_later_is_still_201_and_the_schema_says_both(api, org, client):
    later = api(org, "admin").post(
        "/api/v1/survey-sends/",
        {"survey": make_survey(org).pk, "account": AccountFactory(organization=org).pk,
         "next_run_at": "2031-01-01T09:00:00Z"},
        format="json",
    )  # fmt: skip
    assert later.status_code == 201
    schema = client.get("/api/schema/", {"format": "json"}).json()
    responses = schema["paths"]["/api/v1/survey-sends/"]["post"]["responses"]
    assert {"201", "202"} <= set(responses)
    assert "200" not in responses
