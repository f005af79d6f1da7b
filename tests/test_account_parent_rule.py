"""Changing an account's parent needs write access to the new parent (issue 18, finding 10).

The attack: a CSM attaches their own account under another CSM's account, which changes that book's
hierarchy ARR (``PATCH /accounts/{id}/ {"parent": …}``). The fix: a new parent must be an account the
actor may write too (``Actor.can_set_parent``), on update, create and upsert alike.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account
from accounts.services import refresh_current_arr
from tests.factories import AccountFactory, ContractLineFactory, TeamFactory

pytestmark = pytest.mark.django_db
API = "/api/v1"


@pytest.fixture
def books(org, bob, make_member):
    """bob's account (with ARR) and dave's account, both CSMs of the same organization."""
    dave = make_member(org, "csm").user
    mine = AccountFactory(organization=org, owner=bob, name="Bob's")
    theirs = AccountFactory(organization=org, owner=dave, name="Dave's")
    today = dt.date.today()
    ContractLineFactory(
        contract__account=mine,
        contract__start_date=today - dt.timedelta(days=10),
        contract__end_date=today + dt.timedelta(days=300),
    )
    refresh_current_arr(org)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.arr > 0
    return {"mine": mine, "theirs": theirs, "dave": dave}


def test_csm_cannot_attach_their_account_under_another_csms_account(
    org, bob, api, books, django_capture_on_commit_callbacks
):
    mine, theirs = books["mine"], books["theirs"]
    client = api(org, "csm", bob)
    with django_capture_on_commit_callbacks(execute=True):  # the ARR refresh runs on commit
        response = client.patch(f"{API}/accounts/{mine.pk}/", {"parent": theirs.pk}, format="json")
    assert response.status_code == 403, response.json()
    assert "parent" in response.json()["detail"]
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.parent_id is None
    assert theirs.hierarchy_arr == Decimal("0")  # dave's book is untouched

    # The same through a full update, the upsert route and a create.
    put = client.put(
        f"{API}/accounts/{mine.pk}/",
        {"name": mine.name, "external_id": mine.external_id, "owner": bob.email, "parent": theirs.pk},
        format="json",
    )
    assert put.status_code == 403
    upsert = client.put(f"{API}/accounts/external/{mine.external_id}/", {"parent": theirs.pk}, format="json")
    assert upsert.status_code == 403
    created = client.post(f"{API}/accounts/", {"name": "Sneaky", "parent": theirs.pk}, format="json")
    assert created.status_code == 403
    assert not Account.all_orgs.filter(name="Sneaky").exists()
    mine.refresh_from_db()
    assert mine.parent_id is None


def test_csm_may_attach_under_their_own_account_and_detach(org, bob, api, books, django_capture_on_commit_callbacks):
    mine = books["mine"]
    own_parent = AccountFactory(organization=org, owner=bob)
    client = api(org, "csm", bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.patch(f"{API}/accounts/{mine.pk}/", {"parent": own_parent.pk}, format="json")
    assert response.status_code == 200, response.json()
    own_parent.refresh_from_db()
    assert own_parent.hierarchy_arr == mine.arr  # the hierarchy ARR moved with it
    detached = client.patch(f"{API}/accounts/{mine.pk}/", {"parent": None}, format="json")
    assert detached.status_code == 200


def test_an_existing_parent_the_csm_cannot_write_may_be_kept(org, bob, api, books):
    """An admin put bob's account under dave's: bob still edits his account, sending the same parent."""
    mine, theirs = books["mine"], books["theirs"]
    admin = api(org, "admin")
    assert admin.patch(f"{API}/accounts/{mine.pk}/", {"parent": theirs.pk}, format="json").status_code == 200
    client = api(org, "csm", bob)
    kept = client.patch(f"{API}/accounts/{mine.pk}/", {"name": "Renamed", "parent": theirs.pk}, format="json")
    assert kept.status_code == 200, kept.json()
    other = AccountFactory(organization=org, owner=books["dave"])
    moved = client.patch(f"{API}/accounts/{mine.pk}/", {"parent": other.pk}, format="json")
    assert moved.status_code == 403
    mine.refresh_from_db()
    assert (mine.name, mine.parent_id) == ("Renamed", theirs.pk)


def test_leader_attaches_within_their_teams_only(org, bob, make_member, api, books):
    leader = make_member(org, "leader").user
    team = TeamFactory(organization=org, manager=leader)
    from accounts.models import Membership

    Membership.all_orgs.filter(organization=org, user=bob).update(team=team)
    mine, theirs = books["mine"], books["theirs"]  # bob is in the leader's team; dave is not
    client = api(org, "leader", leader)
    team_parent = AccountFactory(organization=org, owner=bob)
    assert client.patch(f"{API}/accounts/{mine.pk}/", {"parent": team_parent.pk}, format="json").status_code == 200
    assert client.patch(f"{API}/accounts/{mine.pk}/", {"parent": theirs.pk}, format="json").status_code == 403
