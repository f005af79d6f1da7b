"""Keys and access changes are audited, and keys are secrets done right (issue 16 §5).

API keys and write keys: stored as a SHA-256 digest only, the raw key shown once, revocable (it stops
working at once), with a last-used time. Every key creation and revocation, role change, member added or
removed, invitation sent or withdrawn and playbook switched on or off writes an audit entry with who did it,
in the change's transaction; admins read it at ``/api/v1/audit-log/`` and export it as CSV.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.models import ApiKey, Membership, WriteKey
from accounts.services import accept_invitation, find_invitation
from cs_platform.models import AuditEntry
from playbooks.activation import set_active
from playbooks.models_engine import Playbook

pytestmark = pytest.mark.django_db
API = "/api/v1"


def entries(org, action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.for_org(org).filter(action=action).order_by("occurred_at", "id"))


def raw_api_key_of(response) -> str:
    return re.search(r'id="raw-key">(rtn_[^<]+)<', response.content.decode()).group(1)


def table_dump() -> str:
    """Every stored column of both key tables, as text: the raw key must appear nowhere."""
    with connection.cursor() as cursor:
        rows = []
        for table in ("accounts_apikey", "accounts_writekey"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            rows += [repr(row) for row in cursor.fetchall()]
    return "\n".join(rows)


# --- API keys: digest, once, revocable, last used ------------------------------------------------------


def test_an_api_key_is_stored_as_its_digest_shown_once_revocable_and_audited(client, org, alice):
    client.force_login(alice)
    url = reverse("admin-api-keys", args=[org.slug])
    created = client.post(url, {"name": "CI export", "role": "viewer"})
    assert created.status_code == 200 and created["Cache-Control"] == "no-store"
    raw = raw_api_key_of(created)
    key = ApiKey.objects.for_org(org).get()
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in table_dump() and raw not in client.get(url).content.decode()  # shown once

    (entry,) = entries(org, "api_key.created")
    assert (entry.subject_type, entry.subject_id, entry.actor_id) == ("api_key", str(key.pk), alice.pk)
    assert entry.data == {"key_prefix": raw[:12], "role": "viewer"}
    assert raw not in repr(entry.__dict__)

    bearer = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert key.last_used_at is None
    assert bearer.get(f"{API}/accounts/").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None

    assert client.post(reverse("admin-revoke-api-key", args=[org.slug, key.pk])).status_code == 302
    assert bearer.get(f"{API}/accounts/").status_code == 401
    client.post(reverse("admin-revoke-api-key", args=[org.slug, key.pk]))  # twice: one revocation, one entry
    (revoked,) = entries(org, "api_key.revoked")
    assert revoked.actor_id == alice.pk and revoked.subject_id == str(key.pk)


def test_a_key_made_by_the_operator_is_audited_with_no_actor(org):
    key, _raw = ApiKey.issue(organization=org, role="admin", name="from manage.py")
    (entry,) = entries(org, "api_key.created")
    assert entry.actor_id is None and entry.actor_label == "" and entry.subject_id == str(key.pk)


def test_write_key_creation_and_revocation_through_the_api_are_audited(org, alice, api):
    admin = api(org, "admin", alice)
    created = admin.post(f"{API}/write-keys/", {"name": "Backend"}, format="json")
    assert created.status_code == 201
    raw, key_id = created.json()["key"], created.json()["id"]
    assert WriteKey.all_orgs.get(pk=key_id).key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in table_dump()
    assert admin.delete(f"{API}/write-keys/{key_id}/").status_code == 204
    assert admin.delete(f"{API}/write-keys/{key_id}/").status_code == 204
    assert [e.subject_id for e in entries(org, "write_key.created")] == [str(key_id)]
    assert [(e.subject_id, e.actor_id) for e in entries(org, "write_key.revoked")] == [(str(key_id), alice.pk)]


# --- members and roles ---------------------------------------------------------------------------------


def test_a_role_change_on_the_members_page_is_audited_with_before_and_after(client, org, alice, bob):
    client.force_login(alice)
    membership = Membership.objects.for_org(org).get(user=bob)
    response = client.post(reverse("admin-members", args=[org.slug]), {"membership": membership.pk, "role": "leader"})
    assert response.status_code == 302
    (entry,) = entries(org, "member.role_changed")
    assert entry.actor_id == alice.pk and entry.subject_label == bob.email
    assert entry.changes == [{"path": "role", "change": "changed", "before": "csm", "after": "leader"}]


def test_a_role_change_through_the_api_is_audited_and_an_unchanged_role_is_not(org, alice, bob, api):
    admin = api(org, "admin", alice)
    membership = Membership.objects.for_org(org).get(user=bob)
    assert admin.patch(f"{API}/users/{membership.pk}/", {"role": "viewer"}, format="json").status_code == 200
    assert admin.patch(f"{API}/users/{membership.pk}/", {"role": "viewer"}, format="json").status_code == 200
    (entry,) = entries(org, "member.role_changed")
    assert (entry.changes[0]["before"], entry.changes[0]["after"], entry.actor_id) == ("csm", "viewer", alice.pk)


def test_a_refused_role_change_leaves_no_entry(org, alice, api):
    admin = api(org, "admin", alice)
    only_admin = Membership.objects.for_org(org).get(user=alice)
    assert admin.patch(f"{API}/users/{only_admin.pk}/", {"role": "csm"}, format="json").status_code == 400
    assert entries(org, "member.role_changed") == []


def test_removing_a_member_is_audited_with_the_role_they_had(org, alice, bob, api):
    membership = Membership.objects.for_org(org).get(user=bob)
    assert api(org, "admin", alice).delete(f"{API}/users/{membership.pk}/").status_code == 204
    (entry,) = entries(org, "member.removed")
    assert entry.actor_id == alice.pk and entry.data == {"user_id": bob.pk, "email": bob.email, "role": "csm"}


def test_an_invitation_sent_accepted_and_another_withdrawn_are_audited(org, alice, api, django_user_model):
    admin = api(org, "admin", alice)
    sent = admin.post(f"{API}/invitations/", {"email": "dana@example.com", "role": "viewer"}, format="json")
    assert sent.status_code == 201, sent.json()
    token = re.search(r"/invitations/([A-Za-z0-9_-]+)/", mail.outbox[-1].body).group(1)
    dana = django_user_model.objects.create_user(username="dana@example.com", email="dana@example.com")
    accept_invitation(find_invitation(token), user=dana)
    other = admin.post(f"{API}/invitations/", {"email": "eve@example.com", "role": "csm"}, format="json")
    assert admin.delete(f"{API}/invitations/{other.json()['id']}/").status_code == 204

    assert [(e.subject_label, e.actor_id) for e in entries(org, "invitation.created")] == [
        ("dana@example.com", alice.pk),
        ("eve@example.com", alice.pk),
    ]
    (added,) = entries(org, "member.added")
    assert added.actor_id == dana.pk and added.data["role"] == "viewer" and added.data["invited_by_id"] == alice.pk
    (withdrawn,) = entries(org, "invitation.revoked")
    assert withdrawn.subject_label == "eve@example.com" and withdrawn.actor_id == alice.pk


def test_switching_a_playbook_on_and_off_is_audited(org, alice):
    playbook = Playbook.all_orgs.create(organization=org, name="Renewal risk", trigger="account_created")
    assert set_active(playbook, True, by=alice) and not set_active(playbook, True, by=alice)
    assert set_active(playbook, False, by=alice)
    on, off = entries(org, "playbook.activated"), entries(org, "playbook.deactivated")
    assert [(e.subject_id, e.actor_id) for e in on + off] == [(str(playbook.pk), alice.pk)] * 2
    assert off[0].changes == [{"path": "active", "change": "changed", "before": True, "after": False}]


# --- reading and exporting -----------------------------------------------------------------------------


def test_admins_read_and_export_the_key_and_role_entries_others_cannot(org, alice, bob, api, other_org):
    ApiKey.issue(organization=org, role="viewer", name="k1", by=alice)
    ApiKey.issue(organization=other_org, role="viewer", name="theirs")
    admin = api(org, "admin", alice)
    listed = admin.get(f"{API}/audit-log/", {"subject_type": "api_key"})
    assert listed.status_code == 200
    # k1, and the key the api fixture made for this client; never the other organization's.
    labels = sorted(row["subject_label"].split(" (")[0] for row in listed.json()["results"])
    assert labels == ["API key", "k1"]
    exported = admin.get(f"{API}/audit-log/", {"subject_type": "api_key", "format": "csv"})
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert sorted((row["action"], row["subject_label"].split(" (")[0]) for row in rows) == [
        ("api_key.created", "API key"),
        ("api_key.created", "k1"),
    ]
    for role in ("leader", "csm", "viewer"):
        assert api(org, role).get(f"{API}/audit-log/").status_code == 403
