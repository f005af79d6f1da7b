"""Admin → Email capture: every member sees the address; admins change settings, the mailbox (password never
echoed), regenerate the address and work the unmatched inbox; the API's assign/discard and their roles."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Activity
from integrations import email_capture as ec
from integrations.models import CapturedEmail, EmailCapture

from .factories import AccountFactory

pytestmark = pytest.mark.django_db


def unmatched(org, n: int = 0) -> CapturedEmail:
    return CapturedEmail.all_orgs.create(
        organization=org, message_id=f"<u{n}@x.example>", subject="Who is this?", from_address="x@unknown.example",
        sent_at=timezone.now(), status="unmatched", body_excerpt="Hello there",
    )  # fmt: skip


def test_admin_page_settings_regenerate_mailbox_and_inbox(client, org, alice):
    client.force_login(alice)
    url = reverse("admin-email-capture", args=[org.slug])
    page = client.get(url)
    assert page.status_code == 200
    capture = EmailCapture.all_orgs.get(organization=org)
    assert ec.capture_address(capture) in page.content.decode()

    bad = client.post(url, {"action": "settings", "enabled": "on", "never_capture_domains": "not a domain!"})
    assert bad.status_code == 400 and "is not a domain name" in bad.content.decode()
    ok = client.post(url, {"action": "settings", "enabled": "on", "never_capture_domains": "acme.test\nLaw.example"})
    assert ok.status_code == 302
    capture.refresh_from_db()
    assert capture.never_capture_domains == ["acme.test", "law.example"]

    old = capture.token
    client.post(url, {"action": "regenerate"})
    capture.refresh_from_db()
    assert capture.token != old

    saved = client.post(url, {"action": "mailbox", "host": "imap.gmail.com", "port": 993, "user": "cap",
                              "password": "pw-secret-1", "folder": "INBOX"})  # fmt: skip
    assert saved.status_code == 302
    capture.refresh_from_db()
    assert capture.mailbox.credentials["password"] == "pw-secret-1"
    assert "pw-secret-1" not in client.get(url).content.decode()
    internal = client.post(url, {"action": "mailbox", "host": "127.0.0.1", "port": 993, "user": "cap",
                                 "password": "x", "folder": "INBOX"})  # fmt: skip
    assert internal.status_code == 400

    account = AccountFactory(organization=org, name="Initech")
    first, second = unmatched(org, 1), unmatched(org, 2)
    body = client.get(url).content.decode()
    assert "Who is this?" in body and "Initech" in body
    client.post(url, {"action": "assign", "email": first.pk, "account": account.pk})
    first.refresh_from_db()
    assert first.status == "matched" and Activity.all_orgs.get(account=account).type == "email"
    client.post(url, {"action": "discard", "email": second.pk})
    second.refresh_from_db()
    assert second.status == "discarded"


def test_csm_sees_the_address_but_cannot_change_anything(client, org, bob):
    capture = ec.ensure_capture(org)
    unmatched(org)
    client.force_login(bob)
    url = reverse("admin-email-capture", args=[org.slug])
    body = client.get(url).content.decode()
    assert ec.capture_address(capture) in body
    assert "Who is this?" not in body  # the inbox is for admins
    assert client.post(url, {"action": "regenerate"}).status_code == 403
    assert EmailCapture.all_orgs.get(pk=capture.pk).token == capture.token


def test_api_assign_discard_and_roles(org, api, alice, bob):
    account = AccountFactory(organization=org)
    row = unmatched(org)
    csm = api(org, "csm", bob)
    assert csm.get("/api/v1/captured-emails/", {"status": "unmatched"}).json()["count"] == 1
    assert csm.post(f"/api/v1/captured-emails/{row.pk}/assign/", {"account": account.pk}).status_code == 403
    admin = api(org, "admin", alice)
    done = admin.post(f"/api/v1/captured-emails/{row.pk}/assign/", {"account": account.pk}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "matched" and done.json()["activity"]
    again = admin.post(f"/api/v1/captured-emails/{row.pk}/discard/")
    assert again.status_code == 409
    made = admin.post("/api/v1/email-captures/", {"never_capture_domains": ["acme.test"]}, format="json")
    assert made.status_code == 201, made.json()
    capture = admin.get("/api/v1/email-captures/").json()["results"][0]
    assert capture["never_capture_domains"] == ["acme.test"] and capture["skipped_count"] == 0
    assert capture["address"].startswith(f"{org.slug}+")
    moved = admin.post(f"/api/v1/email-captures/{capture['id']}/regenerate/")
    assert moved.status_code == 200 and moved.json()["address"] != capture["address"]
    assert admin.post("/api/v1/email-captures/", {}, format="json").status_code == 409
    bad = admin.patch(f"/api/v1/email-captures/{capture['id']}/", {"never_capture_domains": ["x y"]}, format="json")
    assert bad.status_code == 400
