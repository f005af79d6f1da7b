"""Survey links (tokens) are revocable (issue 16 §5): ``POST /api/v1/survey-sends/{id}/revoke-links/`` and the
survey admin page's button revoke a send's open links; the public page of a revoked link answers 410; the
revocation is audit-logged; only the token's SHA-256 is ever stored; ``used_at`` is its last (only) use."""

from __future__ import annotations

import pytest
from django.core import mail

from cs_platform.models import AuditEntry
from feedback.models import SurveyInvitation, SurveyResponse
from feedback.services import create_send, hash_token, lookup_invitation, run_send

from .factories import ContactFactory
from .survey_factories import invite, make_survey

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []


def revoke_url(invitation: SurveyInvitation) -> str:
    return f"/api/v1/survey-sends/{invitation.send_id}/revoke-links/"


def test_an_admin_revokes_a_sends_open_links_and_their_page_answers_410(api, client, org, alice):
    contact = ContactFactory(account__organization=org)
    invitation, token = invite(contact)
    assert client.get(f"/s/{token}/").status_code == 200

    answer = api(org, "admin", user=alice).post(revoke_url(invitation), {}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"revoked": 1}

    invitation.refresh_from_db()
    assert invitation.revoked_at is not None and invitation.revoked_by == alice
    page = client.get(f"/s/{token}/")
    assert page.status_code == 410
    assert b'data-testid="survey-revoked"' in page.content
    assert client.post(f"/s/{token}/", {"score": "9"}).status_code == 410  # nothing recorded
    assert not SurveyResponse.all_orgs.filter(invitation=invitation).exists()
    assert lookup_invitation(token).state == "revoked"

    entry = AuditEntry.all_orgs.get(organization=org, action="survey_links.revoked")
    assert entry.subject_id == str(invitation.send_id) and entry.actor == alice
    assert entry.data == {"invitations": [invitation.pk]}
    # Revoking again revokes nothing and logs nothing more.
    assert api(org).post(revoke_url(invitation), {}, format="json").json() == {"revoked": 0}
    assert AuditEntry.all_orgs.filter(action="survey_links.revoked").count() == 1


def test_only_the_listed_contacts_links_are_revoked_and_used_links_stay_used(api, client, org):
    survey = make_survey(org)
    first = ContactFactory(account__organization=org)
    second = ContactFactory(account=first.account)
    send = create_send(survey, account=first.account, roles=[])
    run_send(send)
    tokens = {m.to[0]: m.body.split("/s/", 1)[1].split("/", 1)[0] for m in mail.outbox}
    client.post(f"/s/{tokens[second.email]}/", {"score": "8"})  # answered: not open any more

    body = {"contacts": [first.pk, second.pk]}
    assert api(org).post(f"/api/v1/survey-sends/{send.pk}/revoke-links/", body, format="json").json() == {"revoked": 1}
    assert client.get(f"/s/{tokens[first.email]}/").status_code == 410
    assert lookup_invitation(tokens[second.email]).state == "used"
    used = SurveyInvitation.all_orgs.get(send=send, contact=second)
    assert used.revoked_at is None and used.used_at is not None  # the last (only) use of the token


def test_revoking_is_refused_to_viewers_other_organizations_and_bad_bodies(api, org, other_org):
    invitation, token = invite(ContactFactory(account__organization=org))
    url = revoke_url(invitation)
    assert api(org, "viewer").post(url, {}, format="json").status_code == 403
    assert api(other_org).post(url, {}, format="json").status_code == 404
    assert api(org).post(url, {"contacts": ["x"]}, format="json").status_code == 400
    assert api(org).post(url, {"everyone": True}, format="json").status_code == 400
    assert lookup_invitation(token).state == "open"


def test_the_token_is_stored_hashed_only(org):
    invitation, token = invite(ContactFactory(account__organization=org))
    row = SurveyInvitation.all_orgs.filter(pk=invitation.pk).values().get()
    assert row["token_hash"] == hash_token(token)
    assert token not in {str(value) for value in row.values()}


def test_the_survey_admin_page_revokes_a_sends_open_links(client, org, alice, bob):
    from django.urls import reverse

    invitation, token = invite(ContactFactory(account__organization=org))
    url = reverse("admin-survey", args=[org.slug, invitation.survey_id])
    client.force_login(bob)  # a csm: the admin pages are admins' only
    assert client.post(url, {"action": "revoke-links", "send": invitation.send_id}).status_code == 403
    assert lookup_invitation(token).state == "open"
    client.force_login(alice)
    assert 'data-testid="revoke-links"' in client.get(url).content.decode()
    assert client.post(url, {"action": "revoke-links", "send": invitation.send_id}).status_code == 302
    assert client.get(f"/s/{token}/").status_code == 410
    assert AuditEntry.all_orgs.get(action="survey_links.revoked").actor == alice
