"""Write keys (issue #3): admins create and revoke them in the UI and the API; the raw key is shown once,
nobody else sees even their metadata, and a revoked key stops ingestion at once."""

from __future__ import annotations

import base64
import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import WriteKey
from health.models import UsageEvent

pytestmark = pytest.mark.django_db

API = "/api/v1/write-keys/"


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def send(path: str, body: dict, key: str):
    return Client().post(path, data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=basic(key))


def track(message_id: str) -> dict:
    return {"type": "track", "event": "Report Built", "userId": "u1", "messageId": message_id}


def raw_key_of(response) -> str:
    return re.search(r'id="raw-key">(rwk_[^<]+)<', response.content.decode()).group(1)


# --- UI ----------------------------------------------------------------------------------------


def test_admin_creates_a_write_key_shown_once_and_revokes_it(client, org, alice):
    client.force_login(alice)
    url = reverse("admin-write-keys", args=[org.slug])
    empty = client.get(url)
    assert empty.status_code == 200 and "No write keys yet" in empty.content.decode()
    assert 'aria-current="page">Write keys<' in empty.content.decode()

    response = client.post(url, {"name": "Web app (prod)"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    raw = raw_key_of(response)
    key = WriteKey.authenticate(raw)
    assert key is not None and key.organization_id == org.pk
    assert (key.name, key.created_by_id, key.key_prefix) == ("Web app (prod)", alice.pk, raw[:12])
    assert send("/v1/track", track("m-1"), raw).status_code == 200

    listing = client.get(url)
    page = listing.content.decode()
    assert raw not in page and key.key_prefix in page and alice.email in page
    assert "no-store" not in listing.get("Cache-Control", "")

    revoke = client.post(reverse("admin-revoke-write-key", args=[org.slug, key.pk]))
    assert revoke.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert WriteKey.all_orgs.filter(pk=key.pk).exists()  # revoked, not deleted
    assert send("/v1/track", track("m-2"), raw).status_code == 401
    assert UsageEvent.objects.for_org(org).count() == 1
    assert "Revoked" in client.get(url).content.decode()


def test_blank_name_is_a_form_error_and_creates_nothing(client, org, alice):
    client.force_login(alice)
    response = client.post(reverse("admin-write-keys", args=[org.slug]), {"name": "  "})
    assert response.status_code == 400 and 'id="raw-key"' not in response.content.decode()
    assert not WriteKey.objects.for_org(org).exists()


@pytest.mark.parametrize("role", ["leader", "csm", "viewer"])
def test_other_roles_get_403_on_the_page_and_the_revoke(client, org, make_member, role):
    key, raw = WriteKey.issue(organization=org, name="prod")
    client.force_login(make_member(org, role).user)
    assert client.get(reverse("admin-write-keys", args=[org.slug])).status_code == 403
    assert client.post(reverse("admin-write-keys", args=[org.slug]), {"name": "x"}).status_code == 403
    assert client.post(reverse("admin-revoke-write-key", args=[org.slug, key.pk])).status_code == 403
    assert WriteKey.objects.for_org(org).count() == 1
    assert WriteKey.authenticate(raw) is not None


def test_revoking_another_organizations_key_is_404_and_changes_nothing(client, org, other_org, alice):
    theirs, raw = WriteKey.issue(organization=other_org, name="theirs")
    client.force_login(alice)
    assert client.post(reverse("admin-revoke-write-key", args=[org.slug, theirs.pk])).status_code == 404
    assert WriteKey.authenticate(raw) is not None
    assert "theirs" not in client.get(reverse("admin-write-keys", args=[org.slug])).content.decode()


# --- API ---------------------------------------------------------------------------------------


def test_api_create_returns_the_key_once_and_it_works_at_batch(org, api):
    client = api(org, "admin")
    response = client.post(API, {"name": "Backend"}, format="json")
    assert response.status_code == 201, response.json()
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    raw = body["key"]
    assert raw.startswith("rwk_") and body["key_prefix"] == raw[:12] and body["is_active"] is True
    assert body["name"] == "Backend" and body["revoked_at"] is None and body["last_used_at"] is None

    batch = {"batch": [track("b-1"), track("b-2")]}
    assert send("/v1/batch", batch, raw).status_code == 200
    assert UsageEvent.objects.for_org(org).count() == 2

    listing = client.get(API).json()
    assert listing["count"] == 1
    row = listing["results"][0]
    assert "key" not in row and "key_hash" not in row and raw not in json.dumps(listing)
    assert row["last_used_at"] is not None
    detail = client.get(f"{API}{body['id']}/").json()
    assert "key" not in detail and detail["key_prefix"] == raw[:12]


def test_api_created_by_is_the_user_of_a_user_bound_key(org, alice, api):
    response = api(org, "admin", alice).post(API, {"name": "Mine"}, format="json")
    assert response.json()["created_by"] == alice.email
    assert WriteKey.objects.for_org(org).get().created_by == alice


def test_api_delete_revokes_and_keeps_the_row(org, api):
    key, raw = WriteKey.issue(organization=org, name="old")
    client = api(org, "admin")
    assert client.delete(f"{API}{key.pk}/").status_code == 204
    key.refresh_from_db()
    first = key.revoked_at
    assert first is not None
    assert send("/v1/batch", {"batch": [track("x")]}, raw).status_code == 401
    assert client.delete(f"{API}{key.pk}/").status_code == 204  # idempotent: the first revocation stays
    key.refresh_from_db()
    assert key.revoked_at == first
    row = client.get(f"{API}{key.pk}/").json()
    assert row["is_active"] is False and row["revoked_at"] is not None


def test_api_key_secret_cannot_be_set_or_changed(org, api):
    key, raw = WriteKey.issue(organization=org, name="prod")
    client = api(org, "admin")
    refused = client.post(API, {"name": "x", "key": "rwk_mine", "key_prefix": "rwk_mine"}, format="json")
    assert refused.status_code == 400 and set(refused.json()["errors"]) == {"key"}
    assert client.post(API, {}, format="json").status_code == 400
    assert client.patch(f"{API}{key.pk}/", {"name": "renamed"}, format="json").status_code == 405
    assert client.put(f"{API}{key.pk}/", {"name": "renamed"}, format="json").status_code == 405
    assert WriteKey.objects.for_org(org).count() == 1
    assert WriteKey.authenticate(raw).name == "prod"


@pytest.mark.parametrize("role", ["leader", "csm", "viewer"])
def test_api_is_admin_only_reads_included(org, api, role):
    key, raw = WriteKey.issue(organization=org, name="prod")
    client = api(org, role)
    assert client.get(API).status_code == 403
    assert client.get(f"{API}{key.pk}/").status_code == 403
    assert client.post(API, {"name": "x"}, format="json").status_code == 403
    assert client.delete(f"{API}{key.pk}/").status_code == 403
    assert WriteKey.objects.for_org(org).count() == 1
    assert WriteKey.authenticate(raw) is not None


def test_a_write_key_does_not_authenticate_the_api(org):
    _, raw = WriteKey.issue(organization=org, name="prod")
    response = Client().get(API, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401 and response.json()["detail"] == "Invalid or revoked API key."
