"""The surveys API beyond the shared suites: who may send to what, cancel, counts on the list, a response
created through the API (validated, with its survey.response event), and answers that cannot be changed."""

from __future__ import annotations

import pytest

from accounts.models import Segment
from cs_platform.models import DomainEvent
from feedback.models import SurveyResponse, SurveySend

from .factories import AccountFactory, ContactFactory
from .survey_factories import invite, make_survey

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def test_who_may_send_to_what(api, org, bob, make_member, django_capture_on_commit_callbacks):
    survey = make_survey(org)
    mine = AccountFactory(organization=org, owner=bob)
    ContactFactory(account=mine)
    theirs = AccountFactory(organization=org, owner=make_member(org, "csm").user)
    segment = Segment.all_orgs.create(organization=org, name="Everyone")
    csm, admin, viewer = api(org, "csm", bob), api(org, "admin"), api(org, "viewer")
    url = "/api/v1/survey-sends/"
    with django_capture_on_commit_callbacks(execute=True):
        created = csm.post(url, {"survey": survey.pk, "account": mine.pk}, format="json")
    assert created.status_code == 202, created.json()  # queued, never run inside the request
    from feedback.services import run_due_sends

    run_due_sends(org.pk)  # what the queued task does
    body = csm.get(f"{url}{created.json()['id']}/").json()
    assert body["status"] == "done" and body["counts"]["sent"] == 1 and body["counts"]["response_rate"] == 0.0
    assert csm.post(url, {"survey": survey.pk, "account": theirs.pk}, format="json").status_code == 403
    assert csm.post(url, {"survey": survey.pk, "segment": segment.pk}, format="json").status_code == 403
    assert viewer.post(url, {"survey": survey.pk, "account": mine.pk}, format="json").status_code == 403
    both = admin.post(url, {"survey": survey.pk, "account": mine.pk, "segment": segment.pk}, format="json")
    assert both.status_code == 400 and "segment" in both.json()["errors"]
    recurring = admin.post(url, {"survey": survey.pk, "segment": segment.pk, "schedule": "recurring"}, format="json")
    assert "interval_weeks" in recurring.json()["errors"]
    later = admin.post(url, {"survey": survey.pk, "segment": segment.pk, "schedule": "recurring", "interval_weeks": 4,
                             "next_run_at": "2031-01-01T09:00:00Z"}, format="json")  # fmt: skip
    assert later.status_code == 201 and later.json()["status"] == "scheduled"
    send_id = later.json()["id"]
    assert csm.post(f"{url}{send_id}/cancel/").status_code == 403
    assert admin.patch(f"{url}{send_id}/", {"drip_days": 3}, format="json").status_code == 405
    assert admin.post(f"{url}{send_id}/cancel/").json()["status"] == "cancelled"
    assert SurveySend.all_orgs.get(pk=send_id).next_run_at is None


def test_a_response_created_through_the_api_is_validated_and_raises_its_event(api, org, bob):
    account = AccountFactory(organization=org, owner=bob)
    other = AccountFactory(organization=org, owner=bob)
    contact = ContactFactory(account=other)
    client = api(org, "csm", bob)
    url = "/api/v1/survey-responses/"
    base = {"account": account.pk, "kind": "csat", "score": 6, "responded_at": "2026-11-02T10:00:00Z"}
    assert "score" in client.post(url, base, format="json").json()["errors"]
    assert "contact" in client.post(url, {**base, "score": 2, "contact": contact.pk}, format="json").json()["errors"]
    created = client.post(url, {**base, "score": 2, "comment": "Slow"}, format="json")
    assert created.status_code == 201 and created.json()["category"] == "detractor"
    assert created.json()["source"] == "api"
    event = DomainEvent.all_orgs.get(name="survey.response")
    assert event.payload["category"] == "detractor" and event.payload["account"] == account.pk
    listed = client.get(url, {"category": "detractor", "kind": "csat"}).json()["results"]
    assert [row["id"] for row in listed] == [created.json()["id"]]


def test_an_answer_from_the_survey_page_cannot_be_changed_through_the_api(api, org, client):
    contact = ContactFactory(account__organization=org)
    _invitation, token = invite(contact)
    client.post(f"/s/{token}/", {"score": "2"})
    response = SurveyResponse.all_orgs.get()
    changed = api(org, "admin").patch(f"/api/v1/survey-responses/{response.pk}/", {"score": 10}, format="json")
    assert changed.status_code == 400
    response.refresh_from_db()
    assert response.score == 2


def test_a_segment_send_is_queued_as_a_recorded_run_and_surveys_the_segments_contacts(
    api, org, monkeypatch, django_capture_on_commit_callbacks
):
    from cs_platform.celery import app as celery_app
    from feedback.services import run_due_sends

    queued = []
    task = celery_app.tasks["feedback.tasks.run_survey_sends"]
    monkeypatch.setattr(task, "delay", lambda *args, **kwargs: queued.append((args, kwargs)))
    big = AccountFactory(organization=org, touch_model="high")
    small = AccountFactory(organization=org, touch_model="tech")
    inside, outside = ContactFactory(account=big), ContactFactory(account=small)
    rules = {"conditions": [{"field": "touch_model", "op": "eq", "value": "high"}]}
    segment = Segment.all_orgs.create(organization=org, name="High", rules=rules)
    body = {"survey": make_survey(org).pk, "segment": segment.pk}
    with django_capture_on_commit_callbacks(execute=True):
        created = api(org, "admin").post("/api/v1/survey-sends/", body, format="json")
    assert created.status_code == 202
    assert len(queued) == 1 and queued[0][0] == (org.pk,) and "job_id" in queued[0][1]
    run_due_sends(org.pk)  # what the queued task does
    from feedback.models import SurveyInvitation

    assert set(SurveyInvitation.all_orgs.values_list("contact_id", flat=True)) == {inside.pk}
    assert outside.pk not in set(SurveyInvitation.all_orgs.values_list("contact_id", flat=True))


def test_the_score_metrics_are_typed_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]

    def resolve(ref_or_schema):
        ref = ref_or_schema.get("$ref") if isinstance(ref_or_schema, dict) else None
        return components[ref.rsplit("/", 1)[1]] if ref else ref_or_schema

    for kind, counts in (("nps", ("promoters", "passives", "detractors")), ("csat", ("satisfied",)),
                         ("ces", ("easy",))):  # fmt: skip
        operation = schema["paths"][f"/api/v1/metrics/{kind}/"]["get"]
        params = {p["name"]: p for p in operation["parameters"]}
        assert params["start"]["required"] and params["start"]["schema"]["format"] == "date"
        assert set(params["group_by"]["schema"]["enum"]) == {"segment", "touch_model", "industry", "region",
                                                              "owner", "account"}  # fmt: skip
        body = resolve(operation["responses"]["200"]["content"]["application/json"]["schema"])
        props = body["properties"]
        assert props[kind]["type"] == "number" and props[kind]["nullable"] is True
        assert all(props[name]["type"] == "integer" for name in ("responses", *counts))
        group = resolve(props["groups"]["items"])
        assert group["properties"]["key"]["nullable"] is True
        assert list(group["properties"])[0] == "key"


def test_an_answer_from_the_survey_page_cannot_be_deleted_through_the_api(api, org, client):
    contact = ContactFactory(account__organization=org)
    _invitation, token = invite(contact)
    client.post(f"/s/{token}/", {"score": "2"})
    answer = SurveyResponse.all_orgs.get()
    admin = api(org, "admin")
    refused = admin.delete(f"/api/v1/survey-responses/{answer.pk}/")
    assert refused.status_code == 409 and refused["Content-Type"].startswith("application/json")
    assert "survey page" in refused.json()["detail"]
    assert SurveyResponse.all_orgs.filter(pk=answer.pk).exists()
    # An API-created response still can be deleted.
    body = {"account": contact.account_id, "kind": "nps", "score": 9, "responded_at": "2026-11-02T10:00:00Z"}
    created = admin.post("/api/v1/survey-responses/", body, format="json")
    assert admin.delete(f"/api/v1/survey-responses/{created.json()['id']}/").status_code == 204


def test_the_schema_says_deleting_a_survey_page_answer_is_a_409(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    destroy = schema["paths"]["/api/v1/survey-responses/{id}/"]["delete"]["responses"]
    assert "survey page" in destroy["409"]["description"]


def test_a_survey_with_invitations_out_keeps_its_kind(api, org, client, alice):
    from django.urls import reverse
    from django.utils import timezone

    from feedback.models import InvitationStatus, SurveyInvitation
    from feedback.services import create_send, run_send

    account = AccountFactory(organization=org)
    ContactFactory(account=account)
    ContactFactory(account=account)
    survey = make_survey(org)
    send = create_send(survey, account=account, drip_days=2)
    run_send(send, now=timezone.now())  # one sent, one scheduled; no answer yet
    assert not SurveyResponse.all_orgs.exists()
    admin = api(org, "admin")
    url = f"/api/v1/surveys/{survey.pk}/"
    changed = admin.patch(url, {"kind": "csat"}, format="json")
    assert changed.status_code == 400 and "invitations out" in changed.json()["errors"]["kind"][0]
    client.force_login(alice)
    body = {"action": "edit", "survey-name": survey.name, "survey-kind": "csat", "survey-question": "Q?",
            "survey-email_subject": "S", "survey-email_body": "B", "survey-active": "on"}  # fmt: skip
    page = client.post(reverse("admin-survey", args=[org.slug, survey.pk]), body)
    assert page.status_code != 302 and "invitations out" in page.content.decode()
    survey.refresh_from_db()
    assert survey.kind == "nps"
    # Once nothing is out (all skipped), the kind may change again.
    SurveyInvitation.all_orgs.update(status=InvitationStatus.SKIPPED, skip_reason="cancelled")
    assert admin.patch(url, {"kind": "csat"}, format="json").status_code == 200
