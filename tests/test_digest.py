"""The optional daily digest email (issue 12 §2): off by default and toggled on the notifications page; one
email a day per opted-in member, from DIGEST_HOUR in the organization's time zone, with the unread
notifications since the last digest and the tasks due today or overdue; none for a member with nothing to
say; idempotent per member per day (a retry or a second run sends nothing twice), and a send that fails is
tried again. The clock is frozen with time-machine."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from accounts.models import Membership
from playbooks import ctas, tasks
from playbooks.digest import digest_enabled, send_daily_digests, set_daily_digest
from playbooks.models import DigestRun, Notification, NotificationPreference

from .factories import AccountFactory

pytestmark = pytest.mark.django_db

DAY = dt.date(2026, 12, 7)  # a Monday


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)


def membership(org, user) -> Membership:
    return Membership.objects.for_org(org).select_related("organization", "user").get(user=user)


@pytest.fixture
def work(org, bob):
    """Bob's queue on DAY: a CTA with a task due today, one overdue, one due tomorrow, one done; and a snoozed
    CTA with an overdue task (out of his queue, out of the digest)."""
    account = AccountFactory(organization=org, owner=bob, name="Globex")
    with time_machine.travel(at(DAY - dt.timedelta(days=3), 9), tick=False):
        cta, _ = ctas.open_or_update_cta(
            account=account, type="risk", reason="health_red",
            tasks=[ctas.TaskTemplate("Call the champion", 3), ctas.TaskTemplate("Find the root cause", 2),
                   ctas.TaskTemplate("Plan recovery", 4), ctas.TaskTemplate("Done already", 1)],
        )  # fmt: skip
        snoozed, _ = ctas.open_or_update_cta(
            account=AccountFactory(organization=org, owner=bob, name="Initech"), type="lifecycle",
            reason="renewal_prep", tasks=[ctas.TaskTemplate("Snoozed task", 1)],
        )  # fmt: skip
        ctas.snooze(snoozed, until=DAY + dt.timedelta(days=5), reason="waiting_on_customer")
    ctas.complete_task(cta.tasks.get(title="Done already"))
    return cta


def test_off_by_default_and_toggled_on_the_notifications_page(org, bob, make_member, client):
    me = membership(org, bob)
    assert not digest_enabled(me)
    client.force_login(bob)
    page = client.get(reverse("notifications", args=[org.slug])).content.decode()
    assert 'name="daily_digest"' in page and " checked" not in page.split('name="daily_digest"')[1].split(">")[0]
    url = reverse("notifications-digest", args=[org.slug])
    assert client.post(url, {"daily_digest": "on"}).status_code == 302
    assert digest_enabled(me)
    page = client.get(reverse("notifications", args=[org.slug])).content.decode()
    assert " checked" in page.split('name="daily_digest"')[1].split(">")[0]
    client.post(url, {})
    assert not digest_enabled(me)
    # A viewer's own setting: allowed, like marking their view of notifications.
    viewer = make_member(org, "viewer").user
    client.force_login(viewer)
    client.post(url, {"daily_digest": "on"})
    assert digest_enabled(membership(org, viewer))
    assert client.get(url).status_code == 405


def test_one_digest_with_new_notifications_and_tasks_due_or_overdue(org, bob, alice, work):
    set_daily_digest(membership(org, bob), True)
    with time_machine.travel(at(DAY, 7, 5), tick=False):
        counts = send_daily_digests(org.pk)
    assert counts == {"sent": 1, "empty": 0, "failed": 0, "done_before": 0}
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [bob.email]
    body = message.body
    assert "Tasks due today (1)" in body and "Call the champion · Globex" in body
    assert "Overdue tasks (1)" in body and "Find the root cause · Globex · due 6 Dec" in body
    assert "Plan recovery" not in body and "Done already" not in body and "Snoozed task" not in body
    # The notification of the new CTA (unread), with its link; the work queue and the way to turn it off.
    assert "New notifications (2)" in body and "New risk CTA on Globex" in body
    assert reverse("notifications", args=[org.slug]) in body and reverse("work", args=[org.slug]) in body
    assert "Find the root cause" in message.alternatives[0][0]
    run = DigestRun.objects.for_org(org).get(user=bob)
    assert (run.day, run.status, run.notifications, run.tasks_due, run.tasks_overdue) == (DAY, "sent", 2, 1, 1)
    # Alice did not opt in: nothing for her.
    assert not DigestRun.objects.for_org(org).filter(user=alice).exists()


def test_idempotent_per_member_per_day_and_since_the_last_digest(org, bob, work):
    set_daily_digest(membership(org, bob), True)
    with time_machine.travel(at(DAY, 8), tick=False):
        send_daily_digests(org.pk)
    with time_machine.travel(at(DAY, 9), tick=False):
        ctas.notify(bob, organization=org, message="Later that day")
        again = send_daily_digests(org.pk)  # the next hour's beat, or a retried task
    assert again == {"sent": 0, "empty": 0, "failed": 0, "done_before": 1}
    assert len(mail.outbox) == 1
    # The next day: only the notification that arrived since, and the tasks still open and due.
    with time_machine.travel(at(DAY + dt.timedelta(days=1), 7), tick=False):
        send_daily_digests(org.pk)
    assert len(mail.outbox) == 2
    body = mail.outbox[1].body
    assert "New notifications (1)" in body and "Later that day" in body and "New risk CTA" not in body
    assert "Overdue tasks (2)" in body and "Tasks due today (1)" in body and "Plan recovery" in body


def test_nothing_to_say_sends_nothing(org, bob):
    set_daily_digest(membership(org, bob), True)
    with time_machine.travel(at(DAY, 7), tick=False):
        counts = send_daily_digests(org.pk)
    assert counts["empty"] == 1 and mail.outbox == []
    assert DigestRun.objects.for_org(org).get(user=bob).status == "empty"
    # Read notifications are not news either.
    Notification.all_orgs.create(organization=org, user=bob, message="Seen", read_at=at(DAY, 6))
    with time_machine.travel(at(DAY + dt.timedelta(days=1), 7), tick=False):
        assert send_daily_digests(org.pk)["empty"] == 1
    assert mail.outbox == []


def test_from_the_digest_hour_in_the_organizations_time_zone(org, bob, work, settings):
    settings.DIGEST_HOUR = 7
    org.time_zone = "America/New_York"  # UTC-5 in December
    org.save(update_fields=["time_zone"])
    set_daily_digest(membership(org, bob), True)
    with time_machine.travel(at(DAY, 11, 59), tick=False):  # 06:59 in New York
        assert send_daily_digests(org.pk)["sent"] == 0
    assert mail.outbox == []
    with time_machine.travel(at(DAY, 12, 0), tick=False):  # 07:00 in New York
        assert send_daily_digests(org.pk)["sent"] == 1
    assert DigestRun.objects.for_org(org).get(user=bob).day == DAY


def test_a_failed_send_leaves_the_day_unclaimed_and_the_retry_sends_once(org, bob, work, monkeypatch):
    import playbooks.digest as digest

    set_daily_digest(membership(org, bob), True)

    class Down:
        def send_messages(self, messages):
            raise ConnectionRefusedError("mail server down")

    monkeypatch.setattr(digest, "get_connection", lambda: Down())
    with time_machine.travel(at(DAY, 7), tick=False):
        assert send_daily_digests(org.pk)["failed"] == 1
    assert not DigestRun.objects.for_org(org).exists() and mail.outbox == []
    monkeypatch.undo()
    with time_machine.travel(at(DAY, 8), tick=False):
        assert send_daily_digests(org.pk)["sent"] == 1
        assert send_daily_digests(org.pk)["sent"] == 0
    assert len(mail.outbox) == 1


def test_the_beat_queues_only_organizations_with_a_member_who_opted_in(org, other_org, bob, charlie, monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.send_digests, "delay", lambda org_id: queued.append(org_id))
    set_daily_digest(membership(org, bob), True)
    set_daily_digest(membership(other_org, charlie), False)
    assert tasks.send_all_digests() == 1 and queued == [org.pk]
    assert NotificationPreference.all_orgs.count() == 2


def test_the_setting_needs_a_sign_in_and_a_membership_of_the_organization(org, other_org, bob, charlie, client):
    url = reverse("notifications-digest", args=[org.slug])
    anonymous = client.post(url, {"daily_digest": "on"})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    client.force_login(charlie)  # an admin of another organization
    assert client.post(url, {"daily_digest": "on"}).status_code == 404
    assert not NotificationPreference.all_orgs.exists()
