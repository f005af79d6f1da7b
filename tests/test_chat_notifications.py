"""Chat channels as a notification channel: a channel subscribed to notification kinds also gets the in-app
notifications of those kinds (``ChatChannel.notification_kinds``; docs/chat.md), against a real HTTP receiver on
127.0.0.1 (tests/outbound_helpers.py), delivered, logged and retried like every chat message, once per
notification and channel, never across organizations."""

from __future__ import annotations

import json

import pytest

from cs_platform.models import AuditEntry
from playbooks import chat, ctas
from playbooks.choices import NotificationKind
from playbooks.models import ChatAttempt, ChatChannel, ChatDelivery, Notification

from .chat_helpers import Recorder, chat_allows_loopback_fixture, fresh_budgets_fixture, red_account  # noqa: F401 - fixtures
from .chat_helpers import channel as chat_channel
from .outbound_helpers import Receiver, loopback_only_fixture, receiver_fixture  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_only")]

PATH = "/services/T000/B000/notifySECRET9Qz"


def channel(org, receiver, kind="slack", path=PATH, **fields):
    return chat_channel(org, receiver, kind=kind, path=path, **fields)


def test_a_cta_assigned_notification_posts_once_with_account_reason_arr_health_and_link(
    org, bob, receiver, eager, django_capture_on_commit_callbacks
):
    ch = channel(org, receiver, notification_kinds=["cta_assigned"])
    channel(org, receiver, name="#requests", path="/other", notification_kinds=["feature_request"])  # not this kind
    channel(org, receiver, name="#plain", path="/plain")  # subscribed to nothing
    account = red_account(org, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        cta, _ = ctas.open_or_update_cta(account=account, type="risk", reason="health_red")  # no owner: nobody told
    with django_capture_on_commit_callbacks(execute=True):
        ctas.reassign(cta, owner=bob)

    note = Notification.all_orgs.get(user=bob)
    assert note.kind == NotificationKind.CTA_ASSIGNED
    assert [r["path"] for r in receiver.requests] == [PATH]  # only the channel subscribed to the kind
    body = json.loads(receiver.requests[0]["body"])
    who = bob.get_full_name()
    assert body["blocks"][0]["text"]["text"] == f"A CTA assigned to someone — for {who}"
    fields = [f["text"] for f in body["blocks"][1]["fields"]]
    assert fields[0] == "*Account*\nGlobex &amp; &lt;Co&gt;"
    assert fields[1] == "*ARR*\n$125,000"
    assert fields[2] == "*Health*\n◆ Red (38/100)"
    assert fields[3] == "*Reason*\n" + chat._escape(note.message) and note.message.startswith("CTA assigned to you")
    assert body["blocks"][2]["elements"][0]["url"] == f"https://retain.example/o/{org.slug}/accounts/{account.pk}/"
    delivery = ChatDelivery.all_orgs.get()
    assert (delivery.channel_id, delivery.message_kind, delivery.idempotency_key) == (
        ch.pk, "notification", f"notification:{note.pk}",
    )  # fmt: skip
    assert (delivery.status, delivery.attempts, delivery.account_id) == ("succeeded", 1, account.pk)

    # The task again (a redelivered message), the try again: nothing more is posted.
    with django_capture_on_commit_callbacks(execute=True):
        assert chat.post_notifications(org.pk, [note.pk]) == 0
    assert chat.attempt_chat_delivery(org.pk, delivery.pk, attempt=1) is None
    assert len(receiver.requests) == 1 and ChatDelivery.all_orgs.count() == 1


def test_ctas_opened_one_by_one_or_in_bulk_reach_a_teams_channel(
    org, bob, receiver, eager, django_capture_on_commit_callbacks
):
    channel(org, receiver, kind="teams", notification_kinds=["cta_opened"])
    first = red_account(org, django_capture_on_commit_callbacks, name="Initech", owner=bob)
    with django_capture_on_commit_callbacks(execute=True):
        ctas.open_or_update_cta(account=first, type="risk", reason="health_red")
    (body,) = receiver.bodies()
    card = body["attachments"][0]["content"]
    assert card["body"][0]["text"] == f"A CTA opened (for its owner) — for {bob.get_full_name()}"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Account"] == "Initech" and facts["ARR"] == "$125,000" and facts["Health"] == "◆ Red (38/100)"
    assert facts["Reason"].startswith("New risk CTA on Initech")

    others = [red_account(org, django_capture_on_commit_callbacks, name=f"Hooli {i}", owner=bob) for i in (1, 2)]
    with django_capture_on_commit_callbacks(execute=True):
        ctas.open_or_update_many(organization_id=org.pk, accounts=others, type="risk", reason="health_red")
    assert Notification.all_orgs.filter(kind=NotificationKind.CTA_OPENED).count() == 3
    accounts = sorted(
        {f["value"] for b in receiver.bodies()[1:] for f in b["attachments"][0]["content"]["body"][1]["facts"]}
        & {"Hooli 1", "Hooli 2"}
    )
    assert accounts == ["Hooli 1", "Hooli 2"] and len(receiver.requests) == 3


def test_a_failed_post_is_retried_and_logged_like_every_chat_message(
    org, bob, receiver, django_capture_on_commit_callbacks
):
    channel(org, receiver, notification_kinds=["task_assigned"])
    account = red_account(org, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=False):
        note = ctas.notify(bob, organization=org, message="Task for you on Globex: call", kind="task_assigned")
        assert chat.post_notifications(org.pk, [note.pk]) == 1  # the task's work; its first try held back
    delivery = ChatDelivery.all_orgs.get()
    assert delivery.status == "pending" and receiver.requests == [] and delivery.account_id is None
    receiver.statuses = [500]
    schedule = Recorder()
    with django_capture_on_commit_callbacks(execute=True):
        chat.attempt_chat_delivery(org.pk, delivery.pk, attempt=1, schedule=schedule)
    delivery.refresh_from_db()
    assert (delivery.status, schedule.calls[-1][2:]) == ("retrying", (2, 30))
    with django_capture_on_commit_callbacks(execute=True):
        chat.attempt_chat_delivery(org.pk, delivery.pk, attempt=2, schedule=schedule)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    log = ChatAttempt.all_orgs.filter(delivery=delivery).order_by("number")
    assert [(a.number, a.status_code, a.retry_in_seconds) for a in log] == [(1, 500, 30), (2, 200, None)]
    assert account.name not in receiver.requests[0]["body"].decode()  # no CTA: no account facts invented


def test_a_notification_without_a_cta_posts_its_text_and_link_and_a_disabled_channel_gets_nothing(
    org, bob, receiver, eager, django_capture_on_commit_callbacks
):
    channel(org, receiver, notification_kinds=["feature_request"])
    off = channel(org, receiver, name="#off", path="/off", notification_kinds=["feature_request"])
    chat.update_channel(off, is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        ctas.notify(bob, organization=org, message="Feature request “SSO” moved from Planned to Shipped.",
                    url=f"/o/{org.slug}/feedback/requests/7/", kind="feature_request")  # fmt: skip
    assert [r["path"] for r in receiver.requests] == [PATH]
    (body,) = receiver.bodies()
    assert body["blocks"][1]["text"]["text"] == "Feature request “SSO” moved from Planned to Shipped."
    assert body["blocks"][2]["elements"][0]["url"] == f"https://retain.example/o/{org.slug}/feedback/requests/7/"
    # A kind nobody subscribed to (and the default "other") posts nothing.
    with django_capture_on_commit_callbacks(execute=True):
        ctas.notify(bob, organization=org, message="Something else")
    assert len(receiver.requests) == 1


def test_organizations_never_get_each_others_notifications(
    org, other_org, bob, receiver, eager, django_capture_on_commit_callbacks
):
    channel(org, receiver, notification_kinds=["playbook"])
    channel(other_org, receiver, path="/theirs", notification_kinds=[k for k, _ in NotificationKind.choices][:-1])
    with django_capture_on_commit_callbacks(execute=True):
        note = ctas.notify(bob, organization=org, message="Renewal at risk: call them", kind="playbook")
    assert [r["path"] for r in receiver.requests] == [PATH]
    # Another organization's task given this organization's notification id: nothing is read, nothing posted.
    with django_capture_on_commit_callbacks(execute=True):
        assert chat.post_notifications(other_org.pk, [note.pk]) == 0
    assert len(receiver.requests) == 1
    assert not ChatDelivery.all_orgs.filter(organization=other_org).exists()


def test_the_api_validates_the_kinds_and_only_admins_change_them(org, alice, bob, api, receiver):
    admin, csm = api(org, "admin", alice), api(org, "csm", bob)
    ch = channel(org, receiver)
    url = f"/api/v1/chat-channels/{ch.pk}/"
    assert admin.get(url).json()["notification_kinds"] == []
    ok = admin.patch(url, {"notification_kinds": ["playbook", "cta_assigned", "playbook"]}, format="json")
    assert ok.status_code == 200 and ok.json()["notification_kinds"] == ["cta_assigned", "playbook"]
    for bad in (["renewal_at_risk"], ["other"], "cta_assigned"):
        refused = admin.patch(url, {"notification_kinds": bad}, format="json")
        errors = refused.json()["errors"]
        assert refused.status_code == 400 and any(k.startswith("notification_kinds") for k in errors), bad
    assert csm.patch(url, {"notification_kinds": []}, format="json").status_code == 403
    ch.refresh_from_db()
    assert ch.notification_kinds == ["cta_assigned", "playbook"]
    entry = AuditEntry.all_orgs.filter(action="chat_channel.updated", subject_id=str(ch.pk)).get()
    assert {"field": "notification_kinds", "before": [], "after": ["cta_assigned", "playbook"]} in entry.changes
    created = admin.post("/api/v1/chat-channels/", {"kind": "teams", "name": "#risk", "webhook_url": receiver.url("/r"),
                                                    "notification_kinds": ["cta_opened"]}, format="json")  # fmt: skip
    assert created.status_code == 201 and created.json()["notification_kinds"] == ["cta_opened"]


def test_the_admin_page_subscribes_a_new_channel_and_shows_its_kinds(org, alice, client, receiver):
    client.force_login(alice)
    base = f"/o/{org.slug}/admin/webhooks/"
    added = client.post(base + "chat/", {"kind": "slack", "name": "#risk", "webhook_url": receiver.url("/x"),
                                         "notification_kinds": ["cta_assigned", "task_assigned"]})  # fmt: skip
    assert added.status_code == 302
    ch = ChatChannel.all_orgs.get(organization=org)
    assert ch.notification_kinds == ["cta_assigned", "task_assigned"]
    page = client.get(base).content.decode()
    assert "Notifications: A CTA assigned to someone; A task assigned to someone" in page
    refused = client.post(base + "chat/", {"kind": "slack", "name": "#b", "webhook_url": receiver.url("/y"),
                                           "notification_kinds": ["nope"]})  # fmt: skip
    assert refused.status_code == 400 and ChatChannel.all_orgs.count() == 1


def test_the_notifications_api_says_each_notifications_kind_and_filters_by_it(org, bob, api):
    Notification.all_orgs.create(
        organization=org, user=bob, message="A CTA for you", kind=NotificationKind.CTA_ASSIGNED
    )
    Notification.all_orgs.create(organization=org, user=bob, message="Requested", kind=NotificationKind.FEATURE_REQUEST)
    csm = api(org, "csm", bob)
    listed = csm.get("/api/v1/notifications/").json()["results"]
    assert sorted(n["kind"] for n in listed) == ["cta_assigned", "feature_request"]
    only = csm.get("/api/v1/notifications/", {"kind": "cta_assigned"}).json()["results"]
    assert [n["message"] for n in only] == ["A CTA for you"]
    refused = csm.get("/api/v1/notifications/", {"kind": "renewal_at_risk"})
    assert refused.status_code == 400 and "kind" in refused.json()["errors"]


def test_the_admin_page_changes_what_an_existing_channel_receives(org, alice, bob, client, receiver):
    ch = channel(org, receiver, notification_kinds=["cta_opened"])
    base = f"/o/{org.slug}/admin/webhooks/"
    client.force_login(alice)
    page = client.get(base).content.decode()
    assert f'data-testid="chat-receives-{ch.pk}"' in page and f'id="id_ch{ch.pk}-notification_kinds_0"' in page
    url = f"{base}chat/{ch.pk}/receives/"
    changed = client.post(url, {f"ch{ch.pk}-daily_digest": "on",
                                f"ch{ch.pk}-notification_kinds": ["task_assigned", "cta_assigned"]})  # fmt: skip
    assert changed.status_code == 302
    ch.refresh_from_db()
    assert ch.daily_digest and ch.notification_kinds == ["cta_assigned", "task_assigned"]  # the catalogue's order
    entry = AuditEntry.all_orgs.filter(action="chat_channel.updated", subject_id=str(ch.pk)).get()
    assert {"field": "notification_kinds", "before": ["cta_opened"], "after": ["cta_assigned", "task_assigned"]} in (
        entry.changes
    )
    refused = client.post(url, {f"ch{ch.pk}-notification_kinds": ["renewal_at_risk"]})
    assert refused.status_code == 400 and "was not changed" in refused.content.decode()
    ch.refresh_from_db()
    assert ch.notification_kinds == ["cta_assigned", "task_assigned"]
    client.force_login(bob)  # a CSM changes nothing
    assert client.post(url, {f"ch{ch.pk}-notification_kinds": []}).status_code == 403
    ch.refresh_from_db()
    assert ch.notification_kinds == ["cta_assigned", "task_assigned"]
