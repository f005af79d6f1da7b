"""Stripe's signed webhooks → invoices (``POST /hooks/<org>/stripe/``). Events are signed with the official
library's own test helper (``stripe.WebhookSignature.generate_signature_header``); real Postgres and Redis.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
import stripe
from django.test import Client

from health.models import Invoice
from integrations import services
from integrations.choices import RunTrigger
from integrations.models import SyncRecordError, SyncRun, VendorCustomer, WebhookEvent

from .factories import AccountFactory

pytestmark = pytest.mark.django_db(transaction=False)

SECRET = "whsec_test_0123456789abcdefghijklmnop"
DAY = 86_400
T0 = 1_764_000_000  # 2025-11-24


@pytest.fixture(autouse=True)
def clear_limits():
    """The webhook's rate-limit windows live in Redis, keyed by organization id (reused across runs)."""
    from django.core.cache import cache

    if hasattr(cache, "_cache"):
        client = cache._cache.get_client(None, write=True)
        for key in client.scan_iter("*retain:stripehook:*"):
            client.delete(key)


@pytest.fixture
def conn(org):
    return services.create_connection(org, kind="stripe", name="Stripe", credentials={"signing_secret": SECRET})


@pytest.fixture
def accounts(org):
    return {
        "acme": AccountFactory(organization=org, external_id="crm-acme", domain="acme.example"),
        "globex": AccountFactory(organization=org, external_id="crm-globex", domain="globex.example"),
    }


def invoice(iid="in_1", *, status="open", amount=12_345, customer="cus_A", email="billing@acme.example", **extra):
    obj = {
        "id": iid, "object": "invoice", "customer": customer, "customer_email": email, "amount_due": amount,
        "currency": "usd", "created": T0, "due_date": T0 + 30 * DAY, "status": status,
        "status_transitions": {"finalized_at": T0, "paid_at": None, "voided_at": None}, "metadata": {},
    }  # fmt: skip
    obj.update(extra)
    return obj


def event(etype, obj, eid=None, created=T0 + 60):
    return {
        "id": eid or f"evt_{etype}_{obj.get('id')}_{created}", "object": "event", "api_version": "2025-10-29.clover",
        "created": created, "type": etype, "livemode": False, "data": {"object": obj},
    }  # fmt: skip


def post(org, body, secret=SECRET, timestamp=None, header=None):
    payload = body if isinstance(body, str) else json.dumps(body)
    if header is None:
        header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    return Client().post(
        f"/hooks/{org.slug}/stripe/", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )


def test_invoice_lifecycle_lands_on_the_account_matched_by_email_domain(org, conn, accounts):
    r = post(org, event("invoice.finalized", invoice()))
    assert r.status_code == 200, r.content
    assert r.json()["outcome"] == "applied"
    inv = Invoice.objects.for_org(org).get(external_id="in_1")
    assert inv.account == accounts["acme"]
    assert str(inv.amount) == "123.45" and inv.due_date.isoformat() == "2025-12-24" and inv.paid_at is None
    paid = invoice(status="paid", status_transitions={"paid_at": T0 + 3 * DAY})
    r = post(org, event("invoice.paid", paid, created=T0 + 3 * DAY))
    assert r.json()["outcome"] == "applied"
    inv.refresh_from_db()
    assert inv.paid_at.isoformat() == "2025-11-27"
    run = SyncRun.objects.for_org(org).get(trigger=RunTrigger.WEBHOOK)
    assert (run.fetched, run.created, run.updated, run.failed) == (2, 1, 1, 0)


def test_every_invoice_event_type_is_applied(org, conn, accounts):
    outcomes = {}
    for n, etype in enumerate(
        ["invoice.created", "invoice.finalized", "invoice.payment_failed", "invoice.marked_uncollectible"]
    ):
        outcomes[etype] = post(org, event(etype, invoice(f"in_{n}"))).json()["outcome"]
    outcomes["invoice.voided"] = post(
        org, event("invoice.voided", invoice("in_v", status="void", status_transitions={"voided_at": T0 + DAY}))
    ).json()["outcome"]
    assert set(outcomes.values()) == {"applied"}, outcomes
    assert Invoice.objects.for_org(org).count() == 5
    void = Invoice.objects.for_org(org).get(external_id="in_v")
    assert void.amount == 0 and void.paid_at.isoformat() == "2025-11-25"  # owed nothing: never overdue
    assert Invoice.objects.for_org(org).get(external_id="in_3").paid_at is None  # uncollectible stays unpaid


def test_customer_metadata_matches_before_the_email_domain(org, conn, accounts):
    # Invoice metadata, then the customer's (learned from customer.* events), then the domain.
    r = post(org, event("invoice.finalized", invoice("in_m", metadata={"retain_account_external_id": "crm-globex"})))
    assert r.json()["outcome"] == "applied"
    assert Invoice.objects.for_org(org).get(external_id="in_m").account == accounts["globex"]
    customer = {"id": "cus_G", "object": "customer", "email": "x@acme.example",
                "metadata": {"account_external_id": "crm-globex"}}  # fmt: skip
    assert post(org, event("customer.created", customer)).json()["outcome"] == "applied"
    assert VendorCustomer.objects.for_org(org).get(customer_id="cus_G").account_external_id == "crm-globex"
    post(org, event("invoice.finalized", invoice("in_c", customer="cus_G", email="x@acme.example")))
    assert Invoice.objects.for_org(org).get(external_id="in_c").account == accounts["globex"]


def test_an_unmatched_invoice_is_listed_for_the_admin_and_nothing_lands(org, conn, accounts):
    r = post(org, event("invoice.finalized", invoice("in_u", email="ap@nowhere.example")))
    assert r.status_code == 200 and r.json()["outcome"] == "unmatched"
    assert "'nowhere.example'" in r.json()["reason"]
    assert not Invoice.objects.for_org(org).exists()
    error = SyncRecordError.objects.for_org(org).get()
    assert error.external_id == "in_u" and error.field == "account_external_id"
    assert "nowhere.example" in error.reason and error.excerpt["customer"] == "cus_A"
    run = error.run
    assert run.trigger == RunTrigger.WEBHOOK and run.failed == 1
    r = post(org, event("invoice.finalized", invoice("in_x", metadata={"account_external_id": "crm-none"})))
    assert r.json()["outcome"] == "unmatched" and "'crm-none'" in r.json()["reason"]
    # A row the invoices kind refuses (negative amount) is listed too.
    r = post(org, event("invoice.finalized", invoice("in_neg", amount=-5)))
    assert r.json()["outcome"] == "failed"
    assert SyncRecordError.objects.for_org(org).filter(external_id="in_neg", field="amount").exists()


def test_a_bad_signature_gets_400_and_changes_nothing(org, conn, accounts):
    body = event("invoice.finalized", invoice())
    for response in (
        post(org, body, secret="whsec_wrong"),
        post(org, body, header=""),
        post(org, body, header="t=abc,v1=zz"),
        post(org, body, header="t=1,v1=\u00e9\u00e9"),
    ):
        assert response.status_code == 400, response.content
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "bad_signature"
    # The right signature over another body.
    payload = json.dumps(body)
    header = stripe.WebhookSignature.generate_signature_header(payload, SECRET)
    tampered = payload.replace("12345", "1")
    r = Client().post(
        f"/hooks/{org.slug}/stripe/", data=tampered, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    assert r.status_code == 400
    assert not Invoice.objects.for_org(org).exists()
    assert not WebhookEvent.objects.for_org(org).exists() and not SyncRun.objects.for_org(org).exists()


def test_an_old_timestamp_is_refused(org, conn, accounts):
    r = post(org, event("invoice.finalized", invoice()), timestamp=int(time.time()) - 301)
    assert r.status_code == 400 and r.json()["code"] == "stale_signature"
    assert not Invoice.objects.for_org(org).exists()
    assert post(org, event("invoice.finalized", invoice()), timestamp=int(time.time()) - 200).status_code == 200


def test_a_replayed_event_id_changes_nothing(org, conn, accounts):
    body = event("invoice.finalized", invoice(), eid="evt_same")
    assert post(org, body).json()["outcome"] == "applied"
    # Same event id again (Stripe retries, or a replay) even with other values: nothing changes.
    body["data"]["object"]["amount_due"] = 999
    r = post(org, body)
    assert r.status_code == 200 and r.json()["outcome"] == "duplicate"
    assert str(Invoice.objects.for_org(org).get().amount) == "123.45"
    assert WebhookEvent.objects.for_org(org).count() == 1
    assert SyncRun.objects.for_org(org).get().fetched == 1


def test_an_older_event_arriving_late_does_not_undo_a_newer_one(org, conn, accounts):
    paid = invoice(status="paid", status_transitions={"paid_at": T0 + 2 * DAY})
    post(org, event("invoice.paid", paid, created=T0 + 2 * DAY))
    r = post(org, event("invoice.finalized", invoice(), created=T0 + 60))
    assert r.json()["outcome"] == "stale"
    assert Invoice.objects.for_org(org).get().paid_at is not None


def test_refusals_before_processing(org, other_org, conn, accounts):
    url = f"/hooks/{org.slug}/stripe/"
    r = Client().get(url)
    assert r.status_code == 405 and r["Allow"] == "POST"
    assert post(other_org, event("invoice.finalized", invoice())).status_code == 404  # no Stripe connection
    services.update_connection(conn, paused=True)
    assert post(org, event("invoice.finalized", invoice())).status_code == 404
    services.update_connection(conn, paused=False)
    r = post(org, "not json")
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    r = post(org, {"id": "evt_1", "type": "invoice.paid"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_payload"
    r = post(org, {**event("invoice.paid", invoice()), "created": None})
    assert r.status_code == 400 and r.json()["code"] == "invalid_payload"
    r = post(org, [1, 2])
    assert r.status_code == 400 and r.json()["code"] == "invalid_payload"
    r = post(org, event("invoice.paid", {"id": "in_\u0000"}))
    assert r.status_code == 400 and r.json()["code"] == "invalid_payload"  # Postgres cannot store NUL
    r = post(org, '{"id": "evt_s", "type": "invoice.paid", "data": {"object": {"id": "\\ud800"}}}')
    assert r.status_code == 400 and r.json()["code"] == "invalid_payload"
    r = post(org, event("charge.succeeded", {"id": "ch_1"}))
    assert r.status_code == 200 and r.json()["outcome"] == "ignored"
    assert not Invoice.objects.for_org(org).exists()


def test_rate_limit_answers_429_with_retry_after(org, conn, accounts, settings):
    settings.STRIPE_WEBHOOK_RATE = "2/min"
    codes = [post(org, event("invoice.finalized", invoice(f"in_{i}"))).status_code for i in range(3)]
    assert codes[:2] == [200, 200] and codes[2] == 429
    r = post(org, event("invoice.finalized", invoice("in_9")))
    assert int(r["Retry-After"]) > 0
    assert Invoice.objects.for_org(org).count() == 2


def test_a_stripe_event_is_not_lost_while_redis_is_down(org, conn, accounts, settings, caplog):
    """The event is applied in the request: without Redis the rate limit fails open and the event lands
    (the answer 200 means committed); nothing waits in a queue a dying worker could lose."""
    # The warning is read from the log: set its logger's level here, not inherited from whatever an earlier
    # test in the same process left on the root logger.
    caplog.set_level(logging.WARNING, logger="cs_platform")
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache" if "django_redis" in settings.CACHES["default"]["BACKEND"]
            else settings.CACHES["default"]["BACKEND"],
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": settings.CACHES["default"].get("OPTIONS", {}),
        }
    }  # fmt: skip
    r = post(org, event("invoice.finalized", invoice()))
    assert r.status_code == 200, r.content
    assert Invoice.objects.for_org(org).filter(external_id="in_1").exists()
    assert "the cache is unreachable" in caplog.text  # Redis really was out of reach


def test_a_database_failure_answers_500_so_stripe_retries(org, conn, accounts, monkeypatch):
    from integrations import webhooks

    def broken(*args, **kwargs):
        from django.db import OperationalError

        raise OperationalError("the database is down")

    monkeypatch.setattr(webhooks, "_day_run", broken)
    r = post(org, event("invoice.finalized", invoice(), eid="evt_retry"))
    assert r.status_code == 500 and r.json()["code"] == "internal"
    assert not WebhookEvent.objects.for_org(org).exists()  # rolled back: the retry is not a "duplicate"
    monkeypatch.undo()
    r = post(org, event("invoice.finalized", invoice(), eid="evt_retry"))
    assert r.json()["outcome"] == "applied"


def test_the_connection_test_checks_the_secret(org, conn):
    ok, message = services.test_connection(conn)
    assert ok and "whsec_" not in message.replace("starts with whsec_", "")
    services.update_connection(conn, credentials={"signing_secret": "sk_live_oops"})
    ok, message = services.test_connection(conn)
    assert not ok and "whsec_" in message


def test_the_admin_connects_stripe_from_the_page_and_sees_the_webhook_run(client, org, alice, accounts):
    from django.urls import reverse

    client.force_login(alice)
    url = reverse("admin-connectors", args=[org.slug])
    response = client.post(url, {"kind": "stripe", "name": "Stripe", "base_url": "https://api.stripe.com",
                                 "cred_signing_secret": SECRET})  # fmt: skip
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert SECRET not in page and "signing_secret set (never shown)" in page
    post(org, event("invoice.finalized", invoice("in_u", email="ap@nowhere.example")))
    sync = SyncRun.objects.for_org(org).get().sync
    detail = client.get(reverse("admin-connector-sync", args=[org.slug, sync.pk])).content.decode()
    assert "in_u" in detail and "nowhere.example" in detail  # the unmatched invoice, listed for the admin
