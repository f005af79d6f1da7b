"""Invitations instead of forced membership (issue 18, finding 4).

The attack, from a second organization: its admin ``POST``s ``/api/v1/users/`` with the email of
someone who has an account elsewhere. Before the fix that answered ``201`` with the person's real name,
made them a member without asking, broke their session API calls (several organizations, no
``X-Organization``) and, with an organization named to sort first ("AAA…"), took over their landing
page. Now it only creates an invitation, answered the same way for a known or an unknown email; the
person joins only by accepting the emailed single-use, expiring link; the landing organization is the
one the user last opened or chose.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.urls import reverse

from accounts.models import Invitation, Membership, UserPreference
from accounts.services import create_organization, ensure_membership
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db
API = "/api/v1"
LINK = re.compile(r"https?://testserver(/invitations/([A-Za-z0-9_-]+)/)")


def link_in(message) -> tuple[str, str]:
    """(path, raw token) of the invitation link in an email."""
    match = LINK.search(message.body)
    assert match, message.body
    return match.group(1), match.group(2)


@pytest.fixture
def attacker_org(db, make_member):
    """An organization named to sort before every other, whose admin is charlie-like."""
    org = create_organization(slug="aaa", name="AAA First")[0]
    admin = make_member(org, "admin", first_name="Mallory").user
    return org, admin


def members_of(org) -> set[str]:
    return set(Membership.all_orgs.filter(organization=org).values_list("user__email", flat=True))


# --- The attack -----------------------------------------------------------------------------------


def test_second_org_cannot_pull_an_existing_user_in_or_learn_their_name(org, bob, attacker_org, api, client):
    evil, mallory = attacker_org
    client_evil = api(evil, "admin", mallory)
    known = client_evil.post(f"{API}/users/", {"email": bob.email.upper(), "role": "viewer"}, format="json")
    unknown = client_evil.post(f"{API}/users/", {"email": "nobody@example.com", "role": "viewer"}, format="json")

    # Same status, same shape, nothing about the person: the answer is about the invitation.
    assert known.status_code == unknown.status_code == 202, known.json()
    assert set(known.json()) == set(unknown.json())
    assert "name" not in known.json() and "Bob" not in known.content.decode()
    same = {k: v for k, v in known.json().items() if k not in {"id", "email", "url", "created_at", "expires_at"}}
    assert same == {k: v for k, v in unknown.json().items() if k in same}
    assert known.json()["email"] == bob.email.lower() and known.json()["status"] == "pending"
    assert known["Location"] == known.json()["url"]

    # Nobody was added: bob is still only in acme, his landing page and session API are unchanged.
    assert bob.email not in members_of(evil)
    assert Membership.all_orgs.filter(user=bob).count() == 1
    client.force_login(bob)
    assert client.get(reverse("home"))["Location"] == reverse("my-book", args=[org.slug])
    me = client.get(f"{API}/me/")  # a session call without X-Organization still works
    assert me.status_code == 200 and me.json()["organization"]["slug"] == org.slug
    assert not UserPreference.objects.filter(last_organization=evil).exists()


def test_members_page_of_a_second_org_invites_and_reveals_nothing(client, org, bob, attacker_org):
    evil, mallory = attacker_org
    client.force_login(mallory)
    url = reverse("admin-members", args=[evil.slug])
    answers = []
    for email in (bob.email, "nobody@example.com"):
        response = client.post(url, {"action": "invite", "email": email, "role": "csm"}, follow=True)
        assert response.status_code == 200
        answers.append(response.content.decode().replace(email, "EMAIL"))
    assert "Bob" not in answers[0]
    assert "Invitation sent to EMAIL" in answers[0] and "Invitation sent to EMAIL" in answers[1]
    assert bob.email not in members_of(evil)
    page = client.get(url).content.decode()
    assert bob.email in page and "Pending invitations" in page  # listed as pending, not as a member


def test_invitation_email_carries_the_only_copy_of_the_token(org, bob, attacker_org, api):
    evil, mallory = attacker_org
    api(evil, "admin", mallory).post(f"{API}/users/", {"email": bob.email, "role": "csm"}, format="json")
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [bob.email]
    message = mail.outbox[0]
    assert "AAA First" in message.subject and "Mallory" in message.body
    _, token = link_in(message)
    invitation = Invitation.all_orgs.get(organization=evil, email=bob.email)
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = " ".join(str(v) for v in Invitation.all_orgs.filter(pk=invitation.pk).values().get().values())
    assert token not in stored


# --- Accepting --------------------------------------------------------------------------------------


def test_existing_user_accepts_after_signing_in_and_the_link_works_once(client, org, bob, attacker_org, api):
    evil, mallory = attacker_org
    team = TeamFactory(organization=evil)
    api(evil, "admin", mallory).post(f"{API}/users/", {"email": bob.email, "role": "leader", "team": team.pk})
    path, _ = link_in(mail.outbox[0])

    anonymous = client.get(path)
    assert anonymous.status_code == 200 and anonymous["Cache-Control"] == "no-store"
    assert anonymous["Referrer-Policy"] == "same-origin"  # the token never leaves the site in a Referer
    assert 'data-testid="sign-in"' in anonymous.content.decode()
    assert client.post(path, {"action": "accept"}).status_code == 200  # anonymous: nothing happens
    assert bob.email not in members_of(evil)

    client.force_login(bob)
    page = client.get(path).content.decode()
    assert 'data-testid="accept"' in page and "AAA First" in page
    accepted = client.post(path, {"action": "accept"})
    assert accepted.status_code == 302 and accepted["Location"] == reverse("my-book", args=[evil.slug])
    seat = Membership.all_orgs.get(organization=evil, user=bob)
    assert (seat.role, seat.team_id) == ("leader", team.pk)
    invitation = Invitation.all_orgs.get(organization=evil, email=bob.email)
    assert invitation.status == "accepted" and invitation.accepted_by == bob

    again = client.post(path, {"action": "accept"})
    assert again.status_code == 410 and "already been used" in again.content.decode()
    # He chose the new organization: he lands there, until he opens the other one again.
    assert client.get(reverse("home"))["Location"] == reverse("my-book", args=[evil.slug])
    assert client.get(reverse("my-book", args=[org.slug])).status_code == 200
    assert client.get(reverse("home"))["Location"] == reverse("my-book", args=[org.slug])


def test_someone_else_signed_in_cannot_use_the_link(client, org, alice, bob, attacker_org, api):
    evil, mallory = attacker_org
    api(evil, "admin", mallory).post(f"{API}/users/", {"email": bob.email, "role": "admin"}, format="json")
    path, _ = link_in(mail.outbox[0])
    for intruder in (alice, mallory):  # another user, and the inviting admin themself
        client.force_login(intruder)
        assert client.get(path).status_code == 403
        refused = client.post(path, {"action": "accept"})
        assert refused.status_code == 403 and "another address" in refused.content.decode()
    assert bob.email not in members_of(evil)
    assert Invitation.all_orgs.get(organization=evil).status == "pending"


def test_new_person_chooses_a_password_and_joins(client, org, attacker_org, api):
    evil, mallory = attacker_org
    api(evil, "admin", mallory).post(f"{API}/users/", {"email": "New.Person@Example.com", "role": "csm"})
    path, _ = link_in(mail.outbox[0])
    page = client.get(path)
    assert page.status_code == 200 and 'data-testid="create-account"' in page.content.decode()
    weak = client.post(path, {"name": "New Person", "new_password1": "short", "new_password2": "short"})
    assert weak.status_code == 400 and "too short" in weak.content.decode()
    strong = "a-long-enough-passphrase-42"
    created = client.post(path, {"name": "New Person", "new_password1": strong, "new_password2": strong})
    assert created.status_code == 302 and created["Location"] == reverse("my-book", args=[evil.slug])
    seat = Membership.all_orgs.select_related("user").get(organization=evil, user__email="new.person@example.com")
    assert seat.role == "csm" and seat.user.get_full_name() == "New Person"
    assert seat.user.check_password(strong)
    assert client.get(reverse("my-book", args=[evil.slug])).status_code == 200  # signed in
    client.logout()
    assert client.post(path, {"new_password1": strong, "new_password2": strong}).status_code == 410


def test_the_link_expires(client, org, bob, attacker_org, api, settings):
    evil, mallory = attacker_org
    start = dt.datetime(2031, 3, 1, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        api(evil, "admin", mallory).post(f"{API}/users/", {"email": bob.email, "role": "csm"}, format="json")
    path, _ = link_in(mail.outbox[0])
    client.force_login(bob)
    with time_machine.travel(start + dt.timedelta(days=settings.INVITATION_TTL_DAYS, seconds=-60), tick=False):
        assert client.get(path).status_code == 200
    with time_machine.travel(start + dt.timedelta(days=settings.INVITATION_TTL_DAYS, seconds=1), tick=False):
        expired = client.post(path, {"action": "accept"})
        assert expired.status_code == 410 and "expired" in expired.content.decode()
    assert bob.email not in members_of(evil)


def test_decline_kills_the_link(client, org, bob, attacker_org, api):
    evil, mallory = attacker_org
    api(evil, "admin", mallory).post(f"{API}/users/", {"email": bob.email, "role": "csm"}, format="json")
    path, _ = link_in(mail.outbox[0])
    client.force_login(bob)
    assert client.post(path, {"action": "decline"}).status_code == 302
    assert client.post(path, {"action": "accept"}).status_code == 410
    assert bob.email not in members_of(evil)


def test_an_unknown_token_is_a_404(client):
    response = client.get(reverse("invitation", args=["not-a-real-token"]))
    assert response.status_code == 404 and "not valid" in response.content.decode()


# --- Admins manage invitations ----------------------------------------------------------------------


def test_admin_revokes_through_the_api_and_other_orgs_cannot(org, other_org, bob, api, client):
    admin = api(org, "admin")
    created = admin.post(f"{API}/invitations/", {"email": "someone@example.com", "role": "viewer"}, format="json")
    assert created.status_code == 201, created.json()
    invitation_id = created.json()["id"]
    path, _ = link_in(mail.outbox[0])

    assert api(other_org, "admin").delete(f"{API}/invitations/{invitation_id}/").status_code == 404
    assert client.get(path).status_code == 200  # still open
    assert admin.patch(f"{API}/invitations/{invitation_id}/", {"role": "admin"}, format="json").status_code == 405
    assert admin.delete(f"{API}/invitations/{invitation_id}/").status_code == 204
    revoked = client.get(path)
    assert revoked.status_code == 410 and "withdrawn" in revoked.content.decode()
    row = admin.get(f"{API}/invitations/{invitation_id}/").json()
    assert row["status"] == "revoked" and row["revoked_at"]


def test_inviting_again_replaces_the_open_link(org, api, client):
    admin = api(org, "admin")
    admin.post(f"{API}/users/", {"email": "twice@example.com", "role": "viewer"}, format="json")
    admin.post(f"{API}/users/", {"email": "twice@example.com", "role": "csm"}, format="json")
    first, _ = link_in(mail.outbox[0])
    second, _ = link_in(mail.outbox[1])
    assert client.get(first).status_code == 410
    assert client.get(second).status_code == 200
    listed = admin.get(f"{API}/invitations/", {"email": "twice@example.com"}).json()["results"]
    assert sorted(i["status"] for i in listed) == ["pending", "revoked"]


def test_only_admins_invite_or_see_invitations(org, bob, api):
    for role in ("viewer", "csm", "leader"):
        client = api(org, role, bob if role == "csm" else None)
        assert client.post(f"{API}/users/", {"email": "x@example.com", "role": "csm"}).status_code == 403
        assert client.get(f"{API}/invitations/").status_code == 403
    assert not Invitation.all_orgs.exists() and not mail.outbox


def test_a_member_is_refused_and_a_bad_role_is_a_field_error(org, bob, api):
    admin = api(org, "admin")
    member = admin.post(f"{API}/users/", {"email": bob.email, "role": "viewer"}, format="json")
    assert member.status_code == 400 and "already a member" in member.json()["errors"]["email"][0]
    bad_role = admin.post(f"{API}/users/", {"email": "x@example.com", "role": "owner"}, format="json")
    assert bad_role.status_code == 400 and "role" in bad_role.json()["errors"]
    assert not Invitation.all_orgs.exists()


def test_members_page_withdraws_an_invitation(client, org, alice, other_org, charlie):
    client.force_login(alice)
    url = reverse("admin-members", args=[org.slug])
    client.post(url, {"action": "invite", "email": "pending@example.com", "role": "viewer"})
    invitation = Invitation.all_orgs.get(organization=org)
    path, _ = link_in(mail.outbox[0])
    # Another organization's admin cannot withdraw it, even through their own admin pages.
    client.force_login(charlie)
    assert client.post(reverse("admin-revoke-invitation", args=[other_org.slug, invitation.pk])).status_code == 404
    client.force_login(alice)
    assert client.post(reverse("admin-revoke-invitation", args=[org.slug, invitation.pk])).status_code == 302
    invitation.refresh_from_db()
    assert invitation.status == "revoked"
    assert client.get(path).status_code == 410


class BrokenBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("SMTP server down")


def test_no_invitation_without_its_email(org, api, settings):
    settings.EMAIL_BACKEND = "tests.test_invitations.BrokenBackend"
    response = api(org, "admin").post(f"{API}/users/", {"email": "x@example.com", "role": "csm"}, format="json")
    assert response.status_code == 503 and "could not be sent" in response.json()["detail"]
    assert not Invitation.all_orgs.exists()


# --- The landing organization -----------------------------------------------------------------------


def test_landing_org_is_the_last_used_never_the_first_by_name(client, org, bob, attacker_org):
    evil, _ = attacker_org
    # The operator adds bob to "AAA First" later (create_org --admin-email does this): no preference yet.
    UserPreference.objects.filter(user=bob).delete()
    ensure_membership(organization=evil, email=bob.email, role="viewer")
    client.force_login(bob)
    # Not "AAA First" because of its name: the organization he joined first.
    assert client.get(reverse("home"))["Location"] == reverse("my-book", args=[org.slug])
    client.get(reverse("portfolio", args=[evil.slug]))
    assert client.get(reverse("home"))["Location"] == reverse("my-book", args=[evil.slug])
    client.get(reverse("my-book", args=[org.slug]))
    assert client.get(reverse("home"))["Location"] == reverse("my-book", args=[org.slug])
    # Leaving the organization last used falls back to the first joined again.
    client.get(reverse("my-book", args=[evil.slug]))
    Membership.all_orgs.filter(organization=evil, user=bob).delete()
    assert client.get(reverse("home"))["Location"] == reverse("my-book", args=[org.slug])


def test_opening_the_same_org_again_writes_nothing(client, org, bob):
    client.force_login(bob)
    url = reverse("work", args=[org.slug])
    client.get(url)
    assert UserPreference.objects.get(user=bob).last_organization == org
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))]
    assert not [sql for sql in writes if "userpreference" in sql.lower()]
    client.get(reverse("work", args=[org.slug]))  # still the same organization: still no write
