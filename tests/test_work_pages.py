"""The work queue and notifications pages (issue 12 §5): who sees what per role, the forms (snooze, complete,
tasks, bulk), other organizations, the bell's unread count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from accounts.models import Membership
from playbooks.ctas import TaskTemplate, open_or_update_cta
from playbooks.models import Cta, CtaLog, Notification

from .factories import AccountFactory, TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(org, make_member):
    lena = make_member(org, "leader", first_name="Lena").user
    bob = make_member(org, "csm", first_name="Bob").user
    dave = make_member(org, "csm", first_name="Dave").user
    team = TeamFactory(organization=org, manager=lena)
    Membership.all_orgs.filter(organization=org, user=bob).update(team=team)
    return {
        "admin": make_member(org, "admin").user,
        "leader": lena,
        "csm": bob,
        "viewer": make_member(org, "viewer").user,
        "dave": dave,
    }


@pytest.fixture
def book(org, people):
    def cta(owner, name, reason="health_red"):
        account = AccountFactory(organization=org, owner=owner, name=name)
        return open_or_update_cta(
            account=account, type="risk", reason=reason, title=f"Save {name}", tasks=[TaskTemplate("Call", 1)]
        )[0]

    return {"bob": cta(people["csm"], "Bobs Co"), "dave": cta(people["dave"], "Daves Co")}


def titles(response) -> set[str]:
    return {card["cta"].title for card in response.context["cards"]}


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("csm", {"Save Bobs Co"}),
        ("leader", {"Save Bobs Co"}),  # bob is in lena's team, dave is not
        ("admin", {"Save Bobs Co", "Save Daves Co"}),
        ("viewer", {"Save Bobs Co", "Save Daves Co"}),
    ],
)
def test_each_role_sees_its_scope(client, org, people, book, role, expected):
    client.force_login(people[role])
    response = client.get(reverse("work", args=[org.slug]))
    assert response.status_code == 200
    assert titles(response) == expected
    html = response.content.decode()
    forms = 'data-testid="snooze-form"' in html, 'data-testid="bulk-form"' in html
    assert forms == ((False, False) if role == "viewer" else (True, True))
    tasks = [t.cta.title for t in response.context["tasks"]]
    assert set(tasks) == expected


def test_filters_and_snoozed_ctas_leave_the_open_list(client, org, people, book):
    client.force_login(people["admin"])
    url = reverse("work", args=[org.slug])
    assert titles(client.get(url, {"owner": people["dave"].pk})) == {"Save Daves Co"}
    assert titles(client.get(url, {"priority": "high"})) == set()
    assert titles(client.get(url, {"type": "expansion"})) == set()
    assert titles(client.get(url, {"due": "none"})) == {"Save Bobs Co", "Save Daves Co"}
    Cta.all_orgs.filter(pk=book["dave"].pk).update(snoozed_until=dt.date.today() + dt.timedelta(days=3))
    assert titles(client.get(url)) == {"Save Bobs Co"}
    assert titles(client.get(url, {"status": "snoozed"})) == {"Save Daves Co"}
    assert titles(client.get(url, {"cta": book["dave"].pk})) == {"Save Daves Co"}


def test_csm_snoozes_and_completes_from_the_card(client, org, people, book):
    client.force_login(people["csm"])
    cta = book["bob"]
    url = reverse("work-cta-action", args=[org.slug, cta.pk, "snooze"])
    until = (dt.date.today() + dt.timedelta(days=5)).isoformat()
    response = client.post(url, {"until": until, "snooze_reason": "waiting_on_customer", "next": "/elsewhere/"})
    assert response.status_code == 302 and response["Location"] == reverse("work", args=[org.slug])
    cta.refresh_from_db()
    assert str(cta.snoozed_until) == until and cta.snooze_reason == "waiting_on_customer"
    bad = client.post(reverse("work-cta-action", args=[org.slug, cta.pk, "complete"]), {"outcome": ""}, follow=True)
    assert "was not completed" in bad.content.decode()
    client.post(reverse("work-cta-action", args=[org.slug, cta.pk, "complete"]), {"outcome": "resolved"})
    cta.refresh_from_db()
    assert (cta.status, cta.outcome) == ("completed", "resolved")
    assert set(CtaLog.objects.for_org(org).filter(cta=cta).values_list("action", flat=True)) >= {"snoozed", "completed"}


def test_writes_outside_ones_reach_are_refused(client, org, other_org, charlie, people, book):
    dave_cta = book["dave"]
    client.force_login(people["csm"])
    assert (
        client.post(
            reverse("work-cta-action", args=[org.slug, dave_cta.pk, "complete"]), {"outcome": "resolved"}
        ).status_code
        == 403
    )
    task = dave_cta.tasks.get()
    assert client.post(reverse("work-task-toggle", args=[org.slug, task.pk])).status_code == 403
    client.force_login(people["viewer"])
    assert (
        client.post(reverse("work-bulk", args=[org.slug]), {"action": "complete", "cta": [dave_cta.pk]}).status_code
        == 403
    )
    # Another organization: 404 for its pages, and its id is "not found" inside one's own organization.
    client.force_login(charlie)
    assert client.get(reverse("work", args=[org.slug])).status_code == 404
    assert client.get(reverse("notifications", args=[org.slug])).status_code == 404
    url = reverse("work-cta-action", args=[other_org.slug, dave_cta.pk, "complete"])
    assert client.post(url, {"outcome": "resolved"}).status_code == 404
    assert client.post(reverse("work-task-toggle", args=[other_org.slug, task.pk])).status_code == 404
    dave_cta.refresh_from_db()
    assert dave_cta.status == "open"


def test_bulk_actions_do_what_each_cta_allows(client, org, people, book):
    client.force_login(people["leader"])
    url = reverse("work-bulk", args=[org.slug])
    ids = [book["bob"].pk, book["dave"].pk]  # dave's is outside lena's teams
    response = client.post(url, {"action": "complete", "outcome": "no_action_needed", "cta": ids}, follow=True)
    html = response.content.decode()
    assert "1 CTA completed." in html and "Not completed" in html
    assert Cta.all_orgs.get(pk=book["bob"].pk).status == "completed"
    assert Cta.all_orgs.get(pk=book["dave"].pk).status == "open"
    other = open_or_update_cta(account=book["bob"].account, type="risk", reason="usage_drop")[0]
    client.post(url, {"action": "reassign", "owner": people["leader"].pk, "cta": [other.pk]})
    assert Cta.all_orgs.get(pk=other.pk).owner == people["leader"]
    until = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    client.post(url, {"action": "snooze", "until": until, "snooze_reason": "other", "cta": [other.pk]})
    assert str(Cta.all_orgs.get(pk=other.pk).snoozed_until) == until


def test_task_done_and_reopened_by_its_assignee(client, org, people, book):
    task = book["dave"].tasks.get()
    task.assignee = people["csm"]
    task.save()
    client.force_login(people["csm"])
    client.post(reverse("work-task-toggle", args=[org.slug, task.pk]))
    task.refresh_from_db()
    assert task.done_by == people["csm"]
    client.post(reverse("work-task-toggle", args=[org.slug, task.pk]), {"done": "0"})
    task.refresh_from_db()
    assert task.done_at is None


def test_bell_counts_unread_and_the_page_marks_them_read(client, org, people, book):
    bob = people["csm"]
    assert Notification.objects.for_org(org).filter(user=bob).count() == 1  # the CTA opened for him
    client.force_login(bob)
    html = client.get(reverse("my-book", args=[org.slug])).content.decode()
    assert 'data-testid="bell"' in html and '<span class="visually-hidden">, </span>1<span' in html
    page = client.get(reverse("notifications", args=[org.slug])).content.decode()
    assert "Save Bobs Co" in page
    theirs = Notification.objects.for_org(org).get(user=people["dave"])
    client.post(reverse("notifications-read", args=[org.slug]), {"id": theirs.pk})  # not his: nothing
    assert Notification.all_orgs.get(pk=theirs.pk).read_at is None
    client.post(reverse("notifications-read", args=[org.slug]))
    assert not Notification.objects.for_org(org).filter(user=bob, read_at__isnull=True).exists()
    assert "bell-count" not in client.get(reverse("my-book", args=[org.slug])).content.decode()
