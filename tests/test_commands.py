"""Management commands of spec §8: create_org and create_api_key."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import ApiKey, CapacityTarget, Membership, Organization

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_create_org_is_idempotent():
    run("create_org", "initech", "--name", "Initech", "--admin-email", "Pat@Initech.example", "--admin-password", "pw1")
    org = Organization.objects.get(slug="initech")
    assert org.name == "Initech"
    assert CapacityTarget.objects.for_org(org).count() == 3
    user = get_user_model().objects.get(email="pat@initech.example")
    assert user.check_password("pw1")
    assert Membership.objects.for_org(org).get(user=user).role == "admin"

    Membership.objects.for_org(org).filter(user=user).update(role="viewer")
    out = run("create_org", "initech", "--name", "Other name", "--admin-email", "pat@initech.example")
    assert "already exists" in out
    org.refresh_from_db()
    assert org.name == "Initech"
    assert Organization.objects.filter(slug="initech").count() == 1
    assert CapacityTarget.objects.for_org(org).count() == 3
    assert Membership.objects.for_org(org).get(user=user).role == "admin"  # role restored
    user.refresh_from_db()
    assert user.check_password("pw1")  # no --admin-password: password untouched

    run("create_org", "initech", "--name", "Initech", "--admin-email", "pat@initech.example", "--admin-password", "pw2")
    user.refresh_from_db()
    assert user.check_password("pw2")


def test_create_org_rejects_bad_input():
    with pytest.raises(CommandError, match="invalid slug"):
        run("create_org", "not a slug", "--name", "X")
    with pytest.raises(CommandError, match="needs --admin-email"):
        run("create_org", "x", "--name", "X", "--admin-password", "pw")
    assert not Organization.objects.filter(slug="x").exists()


def test_create_api_key_last_line_is_a_working_key(org, account):
    out = run("create_api_key", org.slug, "--role", "viewer", "--name", "BI export")
    raw = out.splitlines()[-1]
    assert raw.startswith("rtn_") and " " not in raw
    key = ApiKey.authenticate(raw)
    assert key is not None and key.name == "BI export" and key.role == "viewer"
    assert key.key_hash != raw and raw not in key.key_hash  # stored hashed

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.get("/api/v1/accounts/")
    assert response.status_code == 200
    assert [row["external_id"] for row in response.json()["results"]] == [account.external_id]
    assert client.post("/api/v1/accounts/", {"name": "nope"}).status_code == 403


def test_create_api_key_bound_to_a_member(org, bob, other_org, charlie):
    raw = run("create_api_key", org.slug, "--role", "csm", "--user", bob.email).splitlines()[-1]
    assert ApiKey.authenticate(raw).user == bob
    with pytest.raises(CommandError, match="cannot be admin"):
        run("create_api_key", org.slug, "--role", "admin", "--user", bob.email)
    with pytest.raises(CommandError, match="not a member"):
        run("create_api_key", org.slug, "--role", "viewer", "--user", charlie.email)


def test_create_api_key_errors(org):
    with pytest.raises(CommandError, match="unknown role 'owner'"):
        run("create_api_key", org.slug, "--role", "owner")
    with pytest.raises(CommandError, match="no organization"):
        run("create_api_key", "nope", "--role", "admin")
    assert not ApiKey.objects.for_org(org).exists()
