"""Slack and Microsoft Teams channels (issue 21 item 6) against a real HTTP receiver on 127.0.0.1.

The playbook action ``post_to_chat`` and the channels' daily digest store a ``ChatDelivery`` and post it through
the outbound guard (``cs_platform.outbound``), retried on the webhooks' schedule. Loopback is refused by the guard
unless allowed, so this module allows 127.0.0.0/8 (``OUTBOUND_ALLOWED_NETWORKS``) except where a test proves the
refusal; every test runs inside the loopback-only safety belt of tests/outbound_helpers.py. The webhook URL is a
secret: the tests read the raw column, every API answer and every log line for it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from accounts.models import Account
from cs_platform.events import dispatch
from cs_platform.models import AuditEntry
from playbooks import chat, services
from playbooks.digest import build_digest
from playbooks.engine import on_event
from playbooks.models import ChatAttempt, ChatChannel, ChatDelivery, Cta, CtaTask, Playbook, PlaybookFiring
from playbooks.validation import playbook_problems

from .chat_helpers import (  # noqa: F401 - fixtures
    SECRET_PATH,
    Recorder,
    channel,
    chat_allows_loopback_fixture,
    fresh_budgets_fixture,
    red_account,
)
from .factories import AccountFactory
from .outbound_helpers import Receiver, loopback_only_fixture, receiver_fixture  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_only")]


def chat_playbook(org, ch, message=None) -> Playbook:
    action: dict[str, Any] = {"kind": "post_to_chat", "channel": ch.pk}
    if message is not None:
        action["message"] = message
    playbook = Playbook(organization=org, name="New logo", trigger="account_created", actions=[action], active=True)
    assert playbook_problems(playbook) == []
    playbook.save()
    return playbook


def create_and_fire(org, django_capture_on_commit_callbacks, *, send: bool = True, **fields) -> Account:
    """Create an account with 125,000 of ARR and a red score, then dispatch its ``account.created``."""
    account = red_account(org, django_capture_on_commit_callbacks, **fields)
    with django_capture_on_commit_callbacks(execute=send):  # send=False: the first try is not queued
        dispatch(org.pk)
    return account


# --- A playbook firing posts exactly one message ------------------------------------------------------------


def test_a_playbook_firing_posts_exactly_one_slack_message_even_when_redelivered(
    org, receiver, eager, django_capture_on_commit_callbacks
):
    ch = channel(org, receiver)
    chat_playbook(org, ch, message="Welcome {{ account.name }}!")
    account = create_and_fire(org, django_capture_on_commit_callbacks)

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["path"] == SECRET_PATH
    assert request["headers"]["Content-Type"].startswith("application/json")
    body = json.loads(request["body"])
    assert body["text"].startswith("Playbook: New logo: Globex & <Co> — ")
    blocks = body["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "actions", "context"]
    assert blocks[0]["text"] == {"type": "plain_text", "text": "Playbook: New logo", "emoji": True}
    assert blocks[1]["text"] == {"type": "mrkdwn", "text": "Welcome Globex &amp; &lt;Co&gt;!"}  # mrkdwn escaped
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields[0] == "*Account*\nGlobex &amp; &lt;Co&gt;"
    assert fields[1] == "*ARR*\n$125,000"
    assert fields[2] == "*Health*\n◆ Red (38/100)"  # the colour in words and the pill's shape, not colour only
    assert fields[3].startswith("*Reason*\nAccount created")
    url = f"https://retain.example/o/{org.slug}/accounts/{account.pk}/"
    assert blocks[3]["elements"][0]["url"] == url
    assert blocks[3]["elements"][0]["type"] == "button"

    delivery = ChatDelivery.all_orgs.get()
    assert (delivery.status, delivery.attempts, delivery.message_kind) == ("succeeded", 1, "playbook")
    firing = PlaybookFiring.all_orgs.get()
    assert delivery.idempotency_key == f"firing:{firing.pk}:0"
    assert firing.results == [{"kind": "post_to_chat", "status": "done", "channel": ch.pk, "delivery": delivery.pk}]

    # Redelivery: the event again to the engine, the task message again, the post again: nothing more is sent.
    from cs_platform.models import DomainEvent

    event = DomainEvent.all_orgs.get(name="account.created")
    with django_capture_on_commit_callbacks(execute=True):
        on_event(event)
        dispatch(org.pk)
    for n in (1, 2):
        assert chat.attempt_chat_delivery(org.pk, delivery.pk, attempt=n) is None
    assert chat.post(ch, "playbook", delivery.idempotency_key, {"text": "again"}) is None
    assert len(receiver.requests) == 1
    assert ChatDelivery.all_orgs.count() == 1 and PlaybookFiring.all_orgs.count() == 1


def test_a_teams_channel_gets_an_adaptive_card(org, receiver, eager, django_capture_on_commit_callbacks):
    ch = channel(org, receiver, kind="teams")
    chat_playbook(org, ch)
    account = create_and_fire(org, django_capture_on_commit_callbacks, name="Initech")

    (body,) = receiver.bodies()
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0] == {"type": "TextBlock", "text": "Playbook: New logo", "weight": "Bolder",
                               "size": "Medium", "wrap": True}  # fmt: skip
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Account"] == "Initech"
    assert facts["ARR"] == "$125,000"
    assert facts["Health"] == "◆ Red (38/100)"
    assert facts["Reason"].startswith("Account created")
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open Account 360 in Retain",
                                "url": f"https://retain.example/o/{org.slug}/accounts/{account.pk}/"}]  # fmt: skip


def test_a_500_is_retried_with_back_off_and_every_try_logged(org, receiver, django_capture_on_commit_callbacks):
    ch = channel(org, receiver)
    chat_playbook(org, ch)
    receiver.statuses = [500, 500]
    create_and_fire(org, django_capture_on_commit_callbacks, send=False)
    delivery = ChatDelivery.all_orgs.get()
    assert delivery.status == "pending" and receiver.requests == []

    schedule = Recorder()
    attempt = 1
    while True:
        with django_capture_on_commit_callbacks(execute=True):
            chat.attempt_chat_delivery(org.pk, delivery.pk, attempt=attempt, schedule=schedule)
        delivery.refresh_from_db()
        if delivery.is_final:
            break
        assert schedule.calls[-1][:3] == (org.pk, delivery.pk, attempt + 1)
        attempt = schedule.calls[-1][2]

    assert [c[3] for c in schedule.calls] == [30, 120]  # the webhooks' back-off schedule
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    log = list(ChatAttempt.all_orgs.filter(delivery=delivery).order_by("number"))
    assert [(a.number, a.status_code, a.retry_in_seconds) for a in log] == [(1, 500, 30), (2, 500, 120), (3, 200, None)]
    assert log[0].error == "The receiver answered HTTP 500."
    assert len(receiver.requests) == 3 and len({r["body"] for r in receiver.requests}) == 1  # identical retries


def test_a_receiver_failing_every_time_ends_failed_after_the_last_try(org, receiver):
    ch = channel(org, receiver)
    receiver.statuses = [500] * 10
    delivery = chat.post(ch, "test", "test:x", {"text": "hi"})
    schedule = Recorder()
    for n in range(1, services.MAX_ATTEMPTS + 1):
        chat.attempt_chat_delivery(org.pk, delivery.pk, attempt=n, schedule=lambda *a: schedule(*a))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", services.MAX_ATTEMPTS)
    assert ChatAttempt.all_orgs.filter(delivery=delivery).count() == services.MAX_ATTEMPTS


def test_the_guard_refuses_an_internal_address_when_not_allowed(org, receiver, settings, loopback_only, caplog):
    ch = channel(org, receiver)
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    delivery = chat.post(ch, "test", "test:refused", {"text": "hi"})
    chat.attempt_chat_delivery(org.pk, delivery.pk, attempt=1, schedule=Recorder())
    delivery.refresh_from_db()
    assert delivery.last_status_code is None
    assert "loopback" in delivery.last_error
    assert delivery.status == "retrying"  # logged as a failed try, retried like any other failure
    assert ChatAttempt.all_orgs.get(delivery=delivery).error == delivery.last_error
    assert receiver.requests == []
    assert all("secretTOKEN" not in r.getMessage() for r in caplog.records)
    with pytest.raises(ValidationError, match="loopback"):
        chat.validate_chat_url(receiver.url(SECRET_PATH))


def test_a_disabled_channel_posts_nothing_and_the_action_is_skipped(
    org, receiver, eager, django_capture_on_commit_callbacks
):
    ch = channel(org, receiver)
    chat_playbook(org, ch)
    chat.update_channel(ch, is_active=False)
    create_and_fire(org, django_capture_on_commit_callbacks)
    assert receiver.requests == []
    (firing,) = PlaybookFiring.all_orgs.all()
    assert firing.results == [{"kind": "post_to_chat", "status": "skipped", "detail": "the chat channel is disabled"}]


def test_validation_of_the_action(org, other_org, receiver):
    mine, theirs = channel(org, receiver), channel(other_org, receiver)
    off = channel(org, receiver, name="off", is_active=False)

    def problems(action):
        return dict(playbook_problems(Playbook(organization=org, name="x", trigger="account_created",
                                               actions=[{"kind": "post_to_chat", **action}])))  # fmt: skip

    assert problems({"channel": mine.pk}) == {}
    assert problems({"channel": theirs.pk}) == {"actions.0.channel": "Unknown chat channel."}
    assert "disabled" in problems({"channel": off.pk})["actions.0.channel"]
    assert "actions.0.channel" in problems({})
    assert "actions.0.channel" in problems({"channel": True})
    assert problems({"channel": mine.pk, "to": "x"}) == {"actions.0.to": "Unknown field."}
    assert "actions.0.message" in problems({"channel": mine.pk, "message": "{% if %}"})
    assert "actions.0.message" in problems({"channel": mine.pk, "message": "x" * 501})


# --- The daily digest -----------------------------------------------------------------------------------------


def test_the_daily_digest_goes_once_a_day_to_opted_in_channels(org, bob, receiver, eager,
                                                                 django_capture_on_commit_callbacks):  # fmt: skip
    digest_ch = channel(org, receiver, name="#digest", daily_digest=True)
    channel(org, receiver, name="#quiet")  # not opted in
    account = AccountFactory(organization=org, name="Hooli", owner=bob)
    from playbooks.models import CtaReason, CtaType

    cta_type = CtaType.objects.for_org(org).first()
    reason = CtaReason.objects.for_org(org).filter(type=cta_type).first()
    cta = Cta.all_orgs.create(organization=org, account=account, type=cta_type, reason=reason, title="Risk",
                              owner=bob)  # fmt: skip
    today = timezone.localdate()
    CtaTask.all_orgs.create(organization=org, cta=cta, title="Call the champion", due_date=today, assignee=bob)
    CtaTask.all_orgs.create(organization=org, cta=cta, title="Send the deck", due_date=today - dt.timedelta(days=2))

    digest = build_digest(org, None, day=today, since=None)
    assert digest.counts == {"notifications": 0, "tasks_due": 1, "tasks_overdue": 1}
    with django_capture_on_commit_callbacks(execute=True):
        assert chat.send_channel_digests(org, day=today) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert chat.send_channel_digests(org, day=today) == 0  # the day is claimed per channel
    (body,) = receiver.bodies()
    text = json.dumps(body)
    assert "Call the champion" in text and "Send the deck" in text and "Hooli" in text
    assert "1 task(s) due today, 1 overdue." in body["text"]
    assert body["blocks"][-1]["elements"][0]["url"] == f"https://retain.example/o/{org.slug}/work/"
    (delivery,) = ChatDelivery.all_orgs.all()
    assert (delivery.channel_id, delivery.idempotency_key) == (digest_ch.pk, f"digest:{today.isoformat()}")


# --- The secret -------------------------------------------------------------------------------------------------


def test_the_webhook_url_is_encrypted_at_rest_write_only_and_never_logged(
    org, alice, api, receiver, eager, caplog, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    client = api(org, "admin", alice)
    secret_url = receiver.url(SECRET_PATH)
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/v1/chat-channels/",
                              {"kind": "slack", "name": "#cs", "webhook_url": secret_url}, format="json")  # fmt: skip
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["url_hint"] == f"127.0.0.1:{receiver.port} …N9Qz"
    answers = [created]
    answers.append(client.get("/api/v1/chat-channels/"))
    answers.append(client.get(f"/api/v1/chat-channels/{pk}/"))
    with django_capture_on_commit_callbacks(execute=True):
        answers.append(client.post(f"/api/v1/chat-channels/{pk}/test/"))
    assert answers[-1].status_code == 202
    answers.append(client.get(f"/api/v1/chat-channels/{pk}/deliveries/"))
    answers.append(client.patch(f"/api/v1/chat-channels/{pk}/", {"name": "#cs-team"}, format="json"))
    answers.append(client.get("/api/v1/audit-log/"))
    for answer in answers:
        assert answer.status_code in (200, 201, 202)
        assert SECRET_PATH not in answer.content.decode() and "secretTOKEN" not in answer.content.decode()
    assert len(receiver.requests) == 1 and receiver.requests[0]["path"] == SECRET_PATH  # the test message went

    with connection.cursor() as cursor:
        cursor.execute("SELECT webhook_url FROM playbooks_chatchannel WHERE id = %s", [pk])
        (raw,) = cursor.fetchone()
    assert "secretTOKEN" not in raw and "127.0.0.1" not in raw and raw.startswith("gAAAA")  # a Fernet token
    assert ChatChannel.all_orgs.get(pk=pk).webhook_url == secret_url  # decrypts
    for record in caplog.records:
        assert "secretTOKEN" not in record.getMessage()
    entries = AuditEntry.all_orgs.filter(organization=org, subject_type="chat_channel")
    assert sorted(entries.values_list("action", flat=True)) == ["chat_channel.created", "chat_channel.updated"]
    assert "secretTOKEN" not in json.dumps(list(entries.values("changes", "data")), default=str)

    # A new URL replaces the old one; the audit entry says so without either.
    new_url = receiver.url("/services/T1/B1/NEWsecretTOKEN")
    answer = client.patch(f"/api/v1/chat-channels/{pk}/", {"webhook_url": new_url}, format="json")
    assert answer.status_code == 200 and "NEWsecret" not in answer.content.decode()
    assert ChatChannel.all_orgs.get(pk=pk).webhook_url == new_url
    last = AuditEntry.all_orgs.filter(subject_type="chat_channel").order_by("-pk").first()
    assert {"field": "webhook_url", "before": "(secret)", "after": "(replaced)"} in last.changes


def test_api_roles_and_validation(org, alice, bob, api, receiver, settings):
    admin, csm = api(org, "admin", alice), api(org, "csm", bob)
    ch = channel(org, receiver)
    assert csm.get("/api/v1/chat-channels/").json()["count"] == 1
    assert csm.post("/api/v1/chat-channels/", {"kind": "slack", "name": "x", "webhook_url": "https://h.example/x"},
                    format="json").status_code == 403  # fmt: skip
    assert csm.post(f"/api/v1/chat-channels/{ch.pk}/test/").status_code == 403
    assert csm.delete(f"/api/v1/chat-channels/{ch.pk}/").status_code == 403
    missing = admin.post("/api/v1/chat-channels/", {"kind": "slack", "name": "y"}, format="json")
    assert missing.status_code == 400 and "webhook_url" in missing.json()["errors"]
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    body = {"kind": "teams", "name": "z", "webhook_url": "http://10.0.0.5/hook"}
    internal = admin.post("/api/v1/chat-channels/", body, format="json")
    assert internal.status_code == 400 and "webhook_url" in internal.json()["errors"]
    bad_kind = admin.post("/api/v1/chat-channels/", {"kind": "irc", "name": "w", "webhook_url": "https://h.example/"},
                          format="json")  # fmt: skip
    assert bad_kind.status_code == 400 and "kind" in bad_kind.json()["errors"]
    assert admin.delete(f"/api/v1/chat-channels/{ch.pk}/").status_code == 204
    assert AuditEntry.all_orgs.filter(action="chat_channel.deleted", subject_id=str(ch.pk)).exists()


# --- The admin page's section ---------------------------------------------------------------------------------


def test_the_admin_page_adds_tests_disables_and_deletes_a_channel(org, alice, bob, client, receiver, eager,
                                                                   django_capture_on_commit_callbacks):  # fmt: skip
    base = f"/o/{org.slug}/admin/webhooks/"
    client.force_login(bob)
    assert client.get(base).status_code == 403  # admins only
    assert client.post(base + "chat/", {"kind": "slack", "name": "#x", "webhook_url": "https://h.example/"}
                       ).status_code == 403  # fmt: skip
    client.force_login(alice)
    refused = client.post(base + "chat/", {"kind": "slack", "name": "#x", "webhook_url": "http://169.254.169.254/"})
    assert refused.status_code == 400 and "metadata" in refused.content.decode()
    url = receiver.url(SECRET_PATH)
    added = client.post(base + "chat/", {"kind": "teams", "name": "#cs", "webhook_url": url, "daily_digest": "on"})
    assert added.status_code == 302
    ch = ChatChannel.all_orgs.get(organization=org)
    assert (ch.kind, ch.name, ch.daily_digest, ch.webhook_url) == ("teams", "#cs", True, url)
    page = client.get(base).content.decode()
    assert "#cs" in page and ch.url_hint in page and "secretTOKEN" not in page
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(base + f"chat/{ch.pk}/test/").status_code == 302
    (body,) = receiver.bodies()
    assert body["attachments"][0]["content"]["body"][0]["text"] == "Retain test message"
    assert "Test: succeeded" in client.get(base).content.decode()
    client.post(base + f"chat/{ch.pk}/toggle/")
    ch.refresh_from_db()
    assert ch.is_active is False
    client.post(base + f"chat/{ch.pk}/delete/")
    assert not ChatChannel.all_orgs.filter(pk=ch.pk).exists()
    actions = list(
        AuditEntry.all_orgs.filter(subject_type="chat_channel").order_by("pk").values_list("action", flat=True)
    )
    assert actions == ["chat_channel.created", "chat_channel.updated", "chat_channel.deleted"]


def test_the_beat_queues_organizations_whose_channel_takes_the_digest_and_waits_for_the_hour(
    org, other_org, receiver, monkeypatch, settings
):
    from playbooks import tasks

    channel(org, receiver, daily_digest=True)
    channel(other_org, receiver, daily_digest=True, is_active=False)  # disabled: not queued
    queued: list[int] = []
    monkeypatch.setattr(tasks.send_digests, "delay", lambda org_id: queued.append(org_id))
    assert tasks.send_all_digests() == 1 and queued == [org.pk]

    settings.DIGEST_HOUR = 7
    calls: list[Any] = []
    monkeypatch.setattr(chat, "send_channel_digests", lambda organization, day: calls.append(day) or 1)
    early = dt.datetime(2026, 12, 5, 6, 30, tzinfo=dt.UTC)  # the org's zone is UTC: before DIGEST_HOUR
    assert chat.send_chat_digests(org.pk, now=early) == 0 and calls == []
    assert chat.send_chat_digests(org.pk, now=early + dt.timedelta(hours=1)) == 1
    assert calls == [dt.date(2026, 12, 5)]


def test_the_playbook_editor_saves_the_action_and_shows_problems_on_its_fields(org, other_org, alice, client, receiver):
    from django.urls import reverse

    from .test_playbook_editor import form_data

    mine, theirs = channel(org, receiver), channel(other_org, receiver)
    client.force_login(alice)
    url = reverse("admin-playbook-new", args=[org.slug])
    html = client.get(url).content.decode()
    assert "Post to a Slack or Teams channel" in html and f'value="{mine.pk}"' in html
    assert f'value="{theirs.pk}"' not in html  # another organization's channel is not offered
    post = form_data(
        **{"a0-kind": "post_to_chat", "a0-chat_channel": str(mine.pk), "a0-chat_message": "Hi {{ account.name }}"}
    )
    assert client.post(url, post).status_code == 302
    playbook = Playbook.objects.for_org(org).get(name="Renewal prep")
    assert playbook.actions == [{"kind": "post_to_chat", "channel": mine.pk, "message": "Hi {{ account.name }}"}]
    bad = form_data(name="Other", **{"a0-kind": "post_to_chat", "a0-chat_channel": "", "a0-chat_message": "{% if %}"})
    response = client.post(url, bad)
    assert response.status_code == 400
    text = response.content.decode()
    assert "Expected the id of one of this organization" in text and "Invalid template" in text
