"""Surveys (issue 13 §1): tokens (single use, expiry, unguessable, no cross-contact access), the public
page (no authenticated call, nothing of the organization but its name), the survey.response event,
sends with their skips, the playbook enrolment, and the moved unsubscribe helpers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from cs_platform.models import DomainEvent
from feedback.models import InvitationStatus, SurveyInvitation, SurveyResponse
from feedback.services import (
    THROTTLED,
    AnswerError,
    answer_invitation,
    create_send,
    hash_token,
    lookup_invitation,
    run_send,
    send_counts,
)

from .factories import AccountFactory, ContactFactory
from .survey_factories import invite, make_survey, token_from_mail

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


# --- Tokens --------------------------------------------------------------------------------------------


def test_only_the_hash_of_the_token_is_stored_and_the_token_is_long_and_random(org):
    contact = ContactFactory(account__organization=org)
    invitation, token = invite(contact)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 random bytes (256 bits), URL-safe
    invitation.refresh_from_db()
    assert invitation.token_hash == hash_token(token) != token
    stored = str(SurveyInvitation.all_orgs.filter(pk=invitation.pk).values().get())
    assert token not in stored
    # Two invitations never share a token.
    _other, token2 = invite(ContactFactory(account__organization=org))
    assert token2 != token


def test_a_link_works_once(client, org):
    contact = ContactFactory(account__organization=org)
    _invitation, token = invite(contact)
    url = f"/s/{token}/"
    assert client.get(url).status_code == 200
    assert client.post(url, {"score": "3", "comment": "Slow support"}).status_code == 200
    response = SurveyResponse.all_orgs.get()
    assert (response.score, response.contact_id, response.account_id) == (3, contact.pk, contact.account_id)
    # Used: neither readable nor changeable again.
    again = client.post(url, {"score": "10", "comment": "changed"})
    assert again.status_code == 410
    assert b"already been used" in again.content and b"Slow support" not in again.content
    assert client.get(url).status_code == 410
    response.refresh_from_db()
    assert (response.score, response.comment) == (3, "Slow support")
    assert SurveyResponse.all_orgs.count() == 1


def test_a_link_expires(client, org):
    contact = ContactFactory(account__organization=org)
    invitation, token = invite(contact)
    invitation.refresh_from_db()
    later = invitation.expires_at + timedelta(seconds=1)
    assert (invitation.expires_at - invitation.sent_at).days == 30
    with pytest.raises(AnswerError) as caught:
        answer_invitation(token, 9, now=later)
    assert caught.value.state == "expired"
    SurveyInvitation.all_orgs.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    page = client.post(f"/s/{token}/", {"score": "9"})
    assert page.status_code == 410 and b"expired" in page.content
    assert not SurveyResponse.all_orgs.exists()


def test_unknown_malformed_and_guessed_tokens_are_404_and_cost_no_lookup(client, org, django_assert_num_queries):
    contact = ContactFactory(account__organization=org)
    _invitation, token = invite(contact)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (flipped, "short", token + "x", "%27%20OR%201=1"):
        page = client.post(f"/s/{bad}/", {"score": "10"})
        assert page.status_code == 404, bad
        assert b"not valid" in page.content
    with django_assert_num_queries(0):
        assert lookup_invitation("not-a-token").state == "unknown"
    assert not SurveyResponse.all_orgs.exists()


def test_one_contacts_token_never_reads_or_changes_another_contacts_answer(client, org):
    account = AccountFactory(organization=org)
    ann, ben = ContactFactory(account=account), ContactFactory(account=account)
    survey = make_survey(org)
    send = create_send(survey, account=account)
    run_send(send)
    tokens = {m.to[0]: token_from_mail(m) for m in mail.outbox}
    ann_token, ben_token = tokens[ann.email], tokens[ben.email]
    client.post(f"/s/{ann_token}/", {"score": "2", "comment": "Ann's private complaint"})
    # Ben's page shows his own question, not Ann's answer; his answer is his own row.
    page = client.get(f"/s/{ben_token}/")
    assert b"Ann's private complaint" not in page.content and ann.name.encode() not in page.content
    client.post(f"/s/{ben_token}/", {"score": "10"})
    rows = dict(SurveyResponse.all_orgs.values_list("contact_id", "score"))
    assert rows == {ann.pk: 2, ben.pk: 10}
    # Ann's used token cannot answer for Ben, nor change her own.
    assert client.post(f"/s/{ann_token}/", {"score": "10"}).status_code == 410
    assert dict(SurveyResponse.all_orgs.values_list("contact_id", "score")) == rows


def test_an_out_of_range_score_is_a_400_and_uses_nothing(client, org):
    contact = ContactFactory(account__organization=org)
    invitation, token = invite(contact, make_survey(org, "csat"))
    for bad in ("0", "6", "x", ""):
        assert client.post(f"/s/{token}/", {"score": bad}).status_code == 400
    invitation.refresh_from_db()
    assert invitation.used_at is None and not SurveyResponse.all_orgs.exists()
    assert client.post(f"/s/{token}/", {"score": "5"}).status_code == 200


# --- The public page ------------------------------------------------------------------------------------


def test_the_public_page_shows_the_org_name_and_question_only_and_no_script(client, org, other_org):
    account = AccountFactory(organization=org, name="Zebra Secret Account")
    contact = ContactFactory(account=account, name="Quentin Private", email="quentin@zebra.example")
    survey = make_survey(org, question="How likely are you to recommend Acme?")
    _invitation, token = invite(contact, survey)
    make_survey(other_org, name="Their survey", question="Other org question")
    page = client.get(f"/s/{token}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert org.name in html and "How likely are you to recommend Acme?" in html
    for secret in ("Zebra Secret Account", "Quentin Private", "quentin@zebra.example", other_org.name,
                   "Other org question", account.external_id):  # fmt: skip
        assert secret not in html
    # No script of any kind (so no call, authenticated or not), no inline style; CSP header set.
    assert "<script" not in html and "style=" not in html and "hx-" not in html
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert page["Referrer-Policy"] == "no-referrer"
    # Keyboard: native radios named score, a label per score, a submit button.
    assert html.count('type="radio" name="score"') == 11
    assert 'type="submit"' in html


def test_the_public_page_is_the_same_for_a_signed_in_member_of_another_org(client, org, other_org, charlie):
    """A signed-in user of another organization opening the link sees nothing of their own org either:
    the page uses no session data (no shell, no navigation)."""
    _invitation, token = invite(ContactFactory(account__organization=org))
    client.force_login(charlie)
    html = client.get(f"/s/{token}/").content.decode()
    assert other_org.name not in html and "/o/" not in html


def test_the_public_page_is_rate_limited(client, org, settings):
    settings.SURVEY_PAGE_RATE = "3/min"
    from django.core.cache import cache

    cache.clear()
    codes = [client.get("/s/" + "x" * 43 + "/").status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]
    cache.clear()


# --- Events ------------------------------------------------------------------------------------------------


def test_an_answer_records_a_survey_response_event_with_its_category(client, org):
    contact = ContactFactory(account__organization=org)
    _invitation, token = invite(contact)
    client.post(f"/s/{token}/", {"score": "4"})
    response = SurveyResponse.all_orgs.get()
    event = DomainEvent.all_orgs.get(name="survey.response")
    assert event.subject_id == str(response.pk)
    assert event.payload["category"] == "detractor" and event.payload["score"] == 4
    assert event.payload["account"] == contact.account_id and event.payload["id"] == response.pk
    assert event.payload["contact"] == contact.pk and event.payload["kind"] == "nps"


@pytest.mark.parametrize(
    ("kind", "score", "category"),
    [("nps", 6, "detractor"), ("nps", 7, "passive"), ("nps", 8, "passive"), ("nps", 9, "promoter"),
     ("csat", 2, "detractor"), ("csat", 3, "passive"), ("csat", 4, "promoter"),
     ("ces", 3, "detractor"), ("ces", 4, "passive"), ("ces", 5, "promoter")],
)  # fmt: skip
def test_categories(kind, score, category):
    from feedback.models import response_category

    assert response_category(kind, score) == category


# --- Sends -------------------------------------------------------------------------------------------------


def test_a_send_skips_the_unsubscribed_departed_and_addressless_and_counts_everything(client, org):
    account = AccountFactory(organization=org)
    ok = ContactFactory(account=account, roles=["champion"])
    ContactFactory(account=account, roles=["champion"], unsubscribed=True)
    ContactFactory(account=account, roles=["champion"], is_active=False)
    ContactFactory(account=account, roles=["champion"], departed_at=timezone.localdate())
    ContactFactory(account=account, roles=["champion"], email="")
    ContactFactory(account=account, roles=["end_user"])  # not targeted by role
    send = create_send(make_survey(org), account=account, roles=["champion"])
    result = run_send(send)
    assert result.invited == 1 and result.delivered == 1
    assert result.skipped == {"skipped_unsubscribed": 1, "skipped_departed": 2, "skipped_no_email": 1}
    assert [m.to for m in mail.outbox] == [[ok.email]]
    message = mail.outbox[0]
    assert "List-Unsubscribe" in message.extra_headers and "/u/" in message.body
    client.post(f"/s/{token_from_mail(message)}/", {"score": "10"})
    counts = send_counts(org.pk, [send.pk])[send.pk]
    skipped = {"skipped_unsubscribed": 1, "skipped_departed": 2, "skipped_no_email": 1}
    assert counts == {"recipients": 5, "skipped": skipped, "scheduled": 0, "failing": 0, "sent": 1, "responded": 1,
                      "response_rate": 1.0}  # fmt: skip
    # Idempotent: the run is done; running again does nothing.
    assert run_send(send).already_done
    assert SurveyInvitation.all_orgs.count() == 5


def test_a_drip_spreads_the_emails_and_the_beat_sends_them_when_due(org):
    account = AccountFactory(organization=org)
    contacts = [ContactFactory(account=account) for _ in range(4)]
    now = timezone.now()
    send = create_send(make_survey(org), account=account, drip_days=4, now=now)
    result = run_send(send, now=now)
    assert result.invited == 4 and result.delivered == 1  # the first at once, then one a day
    from feedback.services import run_due_sends

    assert run_due_sends(org.pk, now=now + timedelta(days=1, minutes=1))["delivered"] == 1
    assert run_due_sends(org.pk, now=now + timedelta(days=5))["delivered"] == 2
    assert run_due_sends(org.pk, now=now + timedelta(days=6))["delivered"] == 0
    assert sorted(m.to[0] for m in mail.outbox) == sorted(c.email for c in contacts)


def test_a_contact_surveyed_recently_is_throttled(org):
    contact = ContactFactory(account__organization=org)
    invite(contact)
    send = create_send(make_survey(org), account=contact.account)
    assert run_send(send).skipped == {THROTTLED: 1}
    assert SurveyInvitation.all_orgs.filter(status=InvitationStatus.SKIPPED, skip_reason=THROTTLED).count() == 1


def test_the_email_sandbox_refuses_tags_and_unknown_fields(api, org):
    client = api(org, "admin")
    body = {"name": "N", "kind": "nps", "question": "Q?", "email_subject": "Hi", "email_body": "{% load x %}"}
    response = client.post("/api/v1/surveys/", body, format="json")
    assert response.status_code == 400 and "email_body" in response.json()["errors"]
    body["email_body"] = "{{ account.owner.password }}"
    assert "email_body" in client.post("/api/v1/surveys/", body, format="json").json()["errors"]
    body["email_body"] = "Hi {{ contact.first_name }}"
    assert client.post("/api/v1/surveys/", body, format="json").status_code == 201


# --- Playbook enrolment ------------------------------------------------------------------------------------


def test_the_enrol_survey_action_surveys_the_accounts_contacts_by_role(org, django_capture_on_commit_callbacks):
    from playbooks.actions import _enrol_survey, validate_actions

    make_survey(org, name="Onboarding NPS")
    account = AccountFactory(organization=org)
    champion = ContactFactory(account=account, roles=["champion"])
    ContactFactory(account=account, roles=["end_user"])
    action = {"kind": "enrol_survey", "survey": "Onboarding NPS", "roles": ["champion"]}
    assert validate_actions([action], organization=org) == []
    assert validate_actions([{**action, "survey": "Nope"}], organization=org)[0][0] == "actions.0.survey"

    class Playbook:
        pk = 7

    with django_capture_on_commit_callbacks(execute=True):
        result = _enrol_survey(Playbook(), account, action, None)
    assert result["status"] == "done" and result["invited"] == 1
    assert [m.to for m in mail.outbox] == [[champion.email]]
    # Within the throttle: a second firing invites nobody.
    with django_capture_on_commit_callbacks(execute=True):
        assert _enrol_survey(Playbook(), account, action, None)["skipped"] == {THROTTLED: 1}


# --- The moved unsubscribe helpers -------------------------------------------------------------------------


def test_playbooks_reexports_the_unsubscribe_helpers_from_accounts():
    import accounts.mailing as low
    import playbooks.emails as high

    assert high.unsubscribe_token is low.unsubscribe_token
    assert high.read_unsubscribe_token is low.read_unsubscribe_token


def test_answered_and_imported_responses_both_feed_the_health_sentiment_signal(client, org):
    """The bare imported rows keep counting beside the answers of the survey page (no data loss)."""
    from health.analytics import load_signals

    contact = ContactFactory(account__organization=org)
    account = contact.account
    SurveyResponse.all_orgs.create(organization=org, account=account, kind="nps", score=10,
                                   responded_at=timezone.now() - timedelta(days=3))  # fmt: skip
    _invitation, token = invite(contact)
    client.post(f"/s/{token}/", {"score": "0"})
    assert SurveyResponse.all_orgs.filter(account=account).count() == 2
    frame = load_signals(org, timezone.localdate(), [account.pk])
    assert frame.loc[account.pk, "nps"] == 0.0  # (1 promoter − 1 detractor) / 2


# --- Tokens stay out of logs ------------------------------------------------------------------------------


def test_a_rejected_answer_logs_the_path_without_the_token(client, org, caplog):
    contact = ContactFactory(account__organization=org)
    _invitation, token = invite(contact, make_survey(org, "csat"))
    with caplog.at_level("WARNING", logger="django.request"):
        assert client.post(f"/s/{token}/", {"score": "9"}).status_code == 400
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records, "the 400 is logged"
    for record in records:
        assert token not in record.getMessage()
        assert "/s/***/" in record.getMessage()


def test_the_gunicorn_access_log_masks_survey_and_unsubscribe_tokens():
    import logging

    from cs_platform import gunicorn_conf
    from cs_platform.logging_filters import MaskPathTokens

    access = gunicorn_conf.logconfig_dict["loggers"]["gunicorn.access"]
    assert "mask_tokens" in access["filters"] and gunicorn_conf.accesslog == "-"
    # gunicorn logs the access line with a dict of atoms as the record's args.
    atoms = {"r": "POST /s/SeCrEtToKeN_abc-123/?x=1 HTTP/1.1", "U": "/u/signed:value:xyz/", "s": "400", "b": 12}
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, '"%(r)s" %(U)s %(s)s', (), None)
    record.args = atoms
    assert MaskPathTokens().filter(record)
    line = record.getMessage()
    assert "SeCrEtToKeN" not in line and "signed:value" not in line
    assert line == '"POST /s/***/?x=1 HTTP/1.1" /u/***/ 400'


# --- Cancelling stops the drip ------------------------------------------------------------------------------


def _drip(org, n=3):
    account = AccountFactory(organization=org)
    for _ in range(n):
        ContactFactory(account=account)
    now = timezone.now()
    send = create_send(make_survey(org), account=account, drip_days=n, now=now)
    run_send(send, now=now)
    return send, now


def test_a_cancelled_one_off_drip_sends_nothing_more_and_counts_the_rest_as_cancelled(api, org):
    from feedback.services import run_due_sends

    send, now = _drip(org)
    send.refresh_from_db()
    assert send.status == "done" and len(mail.outbox) == 1
    body = api(org, "admin").post(f"/api/v1/survey-sends/{send.pk}/cancel/").json()
    assert body["status"] == "cancelled"
    assert body["counts"]["skipped"] == {"cancelled": 2} and body["counts"]["scheduled"] == 0
    assert run_due_sends(org.pk, now=now + timedelta(days=10))["delivered"] == 0
    assert len(mail.outbox) == 1
    assert send_counts(org.pk, [send.pk])[send.pk]["sent"] == 1


def test_the_beat_skips_waiting_drip_emails_of_a_cancelled_send_or_an_inactive_survey(org):
    from feedback.models import SurveySend
    from feedback.services import CANCELLED, deliver_due_invitations

    send, now = _drip(org)
    SurveySend.all_orgs.filter(pk=send.pk).update(status="cancelled")  # cancelled behind the service's back
    assert deliver_due_invitations(org.pk, now=now + timedelta(days=10)) == 0
    other, now = _drip(org)
    other.survey.active = False
    other.survey.save(update_fields=["active"])
    assert deliver_due_invitations(org.pk, now=now + timedelta(days=10)) == 0
    assert len(mail.outbox) == 2  # only the first email of each run
    skipped = SurveyInvitation.all_orgs.filter(status=InvitationStatus.SKIPPED, skip_reason=CANCELLED)
    assert skipped.count() == 4


def test_the_survey_page_cancels_a_done_drip_with_emails_waiting(client, org, alice):
    from django.urls import reverse

    send, _now = _drip(org)
    client.force_login(alice)
    url = reverse("admin-survey", args=[org.slug, send.survey_id])
    # The send's Cancel form (its Revoke-links form stays while links it emailed may be open).
    cancel_form = f'value="cancel"><input type="hidden" name="send" value="{send.pk}"'
    assert cancel_form in client.get(url).content.decode()
    client.post(url, {"action": "cancel", "send": send.pk})
    send.refresh_from_db()
    assert send.status == "cancelled"
    assert send_counts(org.pk, [send.pk])[send.pk]["skipped"] == {"cancelled": 2}
    page = client.get(url).content.decode()
    assert cancel_form not in page and "Cancelled: 2" in page


# --- A broken segment is reported, not silent -------------------------------------------------------------


def test_a_send_whose_segment_is_gone_or_broken_says_why_and_a_recurring_one_is_cancelled(api, org, client, alice):
    from django.urls import reverse

    from accounts.models import Segment

    ContactFactory(account__organization=org)
    survey = make_survey(org)
    gone = Segment.all_orgs.create(organization=org, name="Gone")
    recurring = create_send(survey, segment=gone, schedule="recurring", interval_weeks=4)
    once = create_send(survey, segment=gone)
    gone.delete()
    broken = Segment.all_orgs.create(organization=org, name="Broken")
    # Rules that compiled when saved but no longer do (a field since removed): written behind save()'s check.
    Segment.all_orgs.filter(pk=broken.pk).update(rules={"conditions": [{"field": "nope", "op": "eq", "value": 1}]})
    invalid = create_send(survey, segment=broken, schedule="recurring", interval_weeks=4)
    for send in (recurring, once, invalid):
        assert run_send(send).invited == 0
        send.refresh_from_db()
    assert recurring.status == "cancelled" and recurring.next_run_at is None
    assert "segment of this send was deleted" in recurring.problem and "cancelled" in recurring.problem
    assert once.status == "done" and "deleted" in once.problem
    assert invalid.status == "active" and "Broken" in invalid.problem and "no longer compile" in invalid.problem
    body = api(org, "admin").get(f"/api/v1/survey-sends/{recurring.pk}/").json()
    assert body["status"] == "cancelled" and "deleted" in body["problem"]
    client.force_login(alice)
    page = client.get(reverse("admin-survey", args=[org.slug, survey.pk])).content.decode()
    assert f'data-testid="send-problem-{invalid.pk}"' in page and "no longer compile" in page
    # A healthy run clears the problem.
    Segment.all_orgs.filter(pk=broken.pk).update(rules={"conditions": []})
    from feedback.models import SurveySend

    SurveySend.all_orgs.filter(pk=invalid.pk).update(next_run_at=timezone.now())
    invalid.refresh_from_db()
    run_send(invalid)
    invalid.refresh_from_db()
    assert invalid.problem == ""
