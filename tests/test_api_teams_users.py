"""Teams, members (``/users/``) and activities: the writes that shape who may write what."""

from __future__ import annotations

import pytest

from accounts.models import Activity, Membership, Team

from .factories import AccountFactory, ContactFactory, TeamFactory

pytestmark = pytest.mark.django_db
API = "/api/v1"


def test_team_members_are_set_by_email_and_give_the_manager_their_books(org, make_member, api):
    lena = make_member(org, "leader").user
    bob, dave = make_member(org, "csm").user, make_member(org, "csm").user
    account = AccountFactory(organization=org, owner=bob)
    leader = api(org, "leader", lena)
    assert leader.patch(f"{API}/accounts/{account.pk}/", {"name": "x"}, format="json").status_code == 403

    admin = api(org, "admin")
    body = {"name": "North", "manager": lena.email, "members": [bob.email.upper(), dave.email]}
    created = admin.post(f"{API}/teams/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["members"] == sorted([bob.email, dave.email])
    assert leader.patch(f"{API}/accounts/{account.pk}/", {"name": "x"}, format="json").status_code == 200

    team_id = created.json()["id"]
    replaced = admin.patch(f"{API}/teams/{team_id}/", {"members": [dave.email]}, format="json")
    assert replaced.json()["members"] == [dave.email]  # replace semantics, fresh response
    assert Membership.all_orgs.get(organization=org, user=bob).team is None
    assert leader.patch(f"{API}/accounts/{account.pk}/", {"name": "y"}, format="json").status_code == 403


def test_team_member_must_belong_to_the_organization(org, charlie, api):
    response = api(org, "admin").post(f"{API}/teams/", {"name": "T", "members": [charlie.email]}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"members": [f"No member of this organization has the email {charlie.email}."]}
    assert not Team.all_orgs.filter(organization=org).exists()


def test_invite_member_and_duplicate(org, bob, api):
    """``POST /users/`` invites (202, the invitation); a member's email is refused. See test_invitations."""
    client = api(org, "admin")
    team = TeamFactory(organization=org)
    created = client.post(f"{API}/users/", {"email": "New@Example.com", "role": "csm", "team": team.pk}, format="json")
    assert created.status_code == 202, created.json()
    assert (created.json()["email"], created.json()["team"], created.json()["status"]) == (
        "new@example.com",
        team.pk,
        "pending",
    )
    assert not Membership.all_orgs.filter(organization=org, user__email="new@example.com").exists()
    again = client.post(f"{API}/users/", {"email": bob.email, "role": "viewer"}, format="json")
    assert again.status_code == 400 and "email" in again.json()["errors"]
    bad_role = client.post(f"{API}/users/", {"email": "x@example.com", "role": "owner"}, format="json")
    assert bad_role.status_code == 400 and "role" in bad_role.json()["errors"]


def test_activity_author_defaults_to_the_caller_and_csm_cannot_credit_others(org, bob, make_member, api):
    other = make_member(org, "csm").user
    account = AccountFactory(organization=org, owner=bob)
    contact = ContactFactory(account=account)
    client = api(org, "csm", bob)
    body = {"account": account.pk, "type": "call", "occurred_at": "2026-11-02T10:00:00Z", "contacts": [contact.pk]}
    created = client.post(f"{API}/activities/", body, format="json")
    assert created.status_code == 201, created.json()
    assert (created.json()["author"], created.json()["contacts"]) == (bob.email, [contact.pk])
    assert created.json()["is_customer_touch"] is True
    credited = client.post(f"{API}/activities/", {**body, "author": other.email}, format="json")
    assert credited.status_code == 403
    assert Activity.all_orgs.filter(organization=org).count() == 1


def test_activity_contacts_must_be_on_the_account(org, api):
    account, elsewhere = AccountFactory(organization=org), AccountFactory(organization=org)
    contact = ContactFactory(account=elsewhere)
    body = {"account": account.pk, "type": "meeting", "occurred_at": "2026-11-02T10:00:00Z", "contacts": [contact.pk]}
    response = api(org, "admin").post(f"{API}/activities/", body, format="json")
    assert response.status_code == 400 and "contacts" in response.json()["errors"]


def test_me_and_custom_views_carry_ratelimit_headers(org, api):
    response = api(org, "viewer").get(f"{API}/me/")
    assert response.status_code == 200
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(response.headers)
