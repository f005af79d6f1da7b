"""The work queue on the pages of accounts (issue 12 §5): Account 360's CTA panel, and My book's open-CTA
column and its panels (my open CTAs, my tasks due, renewals in the next 90 days), per role, with constant
query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership
from playbooks.ctas import TaskTemplate, complete, open_or_update_cta, snooze
from playbooks.models import Cta, CtaTask

from .factories import AccountFactory, TeamFactory
from .renewal_factories import contract_with_lines, renewal_for

pytestmark = pytest.mark.django_db


def open_cta(account, reason="health_red", **kwargs):
    kwargs.setdefault("tasks", [TaskTemplate("Call the sponsor", 1), TaskTemplate("Send the plan", 3)])
    return open_or_update_cta(
        account=account, type="risk", reason=reason, title=f"{reason} on {account.name}", **kwargs
    )[0]


# --- Account 360 -----------------------------------------------------------------------------------


def test_account_360_lists_open_snoozed_and_recent_ctas_with_tasks(client, org, bob, account):
    red = open_cta(account, priority="high", due_in_days=3)
    drop = open_cta(account, "health_drop", priority="low")
    snooze(drop, until=timezone.localdate() + dt.timedelta(days=5), reason="waiting_on_customer")
    done = open_cta(account, "usage_drop")
    complete(done, outcome="resolved", note="Usage is back")
    client.force_login(bob)
    response = client.get(reverse("account-detail", args=[org.slug, account.pk]))
    html = response.content.decode()
    panel = response.context["cta_panel"]
    assert [card["cta"].pk for card in panel["open"]] == [red.pk, drop.pk]  # by due date, none last
    assert [c.pk for c in panel["recent"]] == [done.pk]
    assert 'High<span class="visually-hidden"> priority</span>' in html  # a word, with its shape
    assert 'class="prio-mark"' in html
    assert "Call the sponsor" in html and "Send the plan" in html
    assert 'data-testid="snoozed-note"' in html and "Waiting on the customer" in html
    assert "Usage is back" in html and "Resolved" in html
    assert f"cta={red.pk}#cta-{red.pk}" in html  # links to its card in the work queue
    # The owner may snooze and complete the open ones (a snoozed one only complete).
    assert html.count('data-testid="complete-form"') == 2
    assert html.count('data-testid="snooze-form"') == 1


def test_account_360_without_ctas_says_so(client, org, bob, account):
    client.force_login(bob)
    html = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    assert 'data-testid="no-open-ctas"' in html and "arrive with playbooks" not in html


@pytest.mark.parametrize(("role", "forms"), [("admin", True), ("leader", True), ("csm", False), ("viewer", False)])
def test_account_360_forms_follow_who_may_write(client, org, bob, make_member, role, forms):
    """bob owns the account; the other CSM and the viewer read without forms, bob's leader and admins write."""
    account = AccountFactory(organization=org, owner=bob)
    open_cta(account)
    user = make_member(org, role).user
    if role == "leader":
        Membership.all_orgs.filter(organization=org, user=bob).update(team=TeamFactory(organization=org, manager=user))
    client.force_login(user)
    html = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    assert ('data-testid="complete-form"' in html) is forms
    assert 'data-testid="account-cta"' in html


def test_complete_from_account_360_comes_back_to_it(client, org, bob, account):
    cta = open_cta(account)
    client.force_login(bob)
    back = reverse("account-detail", args=[org.slug, account.pk])
    url = reverse("work-cta-action", args=[org.slug, cta.pk, "complete"])
    response = client.post(url, {"outcome": "resolved", "next": back})
    assert response.status_code == 302 and response.url == back
    cta.refresh_from_db()
    assert cta.status == "completed"
    # Never to another site, nor outside this organization's pages.
    other = open_cta(account, "health_drop")
    url = reverse("work-cta-action", args=[org.slug, other.pk, "snooze"])
    until = (timezone.localdate() + dt.timedelta(days=3)).isoformat()
    for target in ("https://evil.example/o/acme/accounts/1/", "/o/globex/accounts/1/"):
        response = client.post(url, {"until": until, "snooze_reason": "other", "next": target})
        assert response.url == reverse("work", args=[org.slug])


def test_viewer_cannot_complete_from_account_360(client, org, bob, account, make_member):
    cta = open_cta(account)
    client.force_login(make_member(org, "viewer").user)
    response = client.post(reverse("work-cta-action", args=[org.slug, cta.pk, "complete"]), {"outcome": "resolved"})
    assert response.status_code == 403
    assert Cta.objects.for_org(org).get(pk=cta.pk).status == "open"


def test_account_360_of_another_org_shows_nothing_of_it(client, org, other_org, bob, charlie, account):
    open_cta(account)
    client.force_login(charlie)
    assert client.get(reverse("account-detail", args=[other_org.slug, account.pk])).status_code == 404


# --- My book ---------------------------------------------------------------------------------------


@pytest.fixture
def bobs_work(org, bob, make_member):
    today = timezone.localdate()
    mine = AccountFactory(organization=org, owner=bob, name="Mine Co")
    quiet = AccountFactory(organization=org, owner=bob, name="Quiet Co")
    dave = make_member(org, "csm", first_name="Dave").user
    theirs = AccountFactory(organization=org, owner=dave, name="Theirs Co")
    first = open_cta(mine, due_in_days=-2, tasks=[TaskTemplate("Overdue call", -1), TaskTemplate("Today mail", 0)])
    open_cta(mine, "usage_drop", tasks=[TaskTemplate("This week", 4), TaskTemplate("Next month", 30)])
    snoozed = open_cta(quiet, "health_drop", tasks=[TaskTemplate("Hidden while snoozed", 0)])
    snooze(snoozed, until=today + dt.timedelta(days=5), reason="other")
    open_cta(theirs, tasks=[TaskTemplate("Daves task", 0)])
    soon = contract_with_lines(
        org, account=mine, start=today - dt.timedelta(days=300), end=today + dt.timedelta(days=40)
    )
    later = contract_with_lines(
        org, account=quiet, start=today - dt.timedelta(days=100), end=today + dt.timedelta(days=200)
    )
    renewal_for(soon)
    renewal_for(later)
    return {"mine": mine, "quiet": quiet, "theirs": theirs, "first": first}


def test_my_book_counts_open_ctas_per_account(client, org, bob, bobs_work):
    client.force_login(bob)
    response = client.get(reverse("my-book", args=[org.slug]), {"scope": "all"})
    counts = {a.name: value for a in response.context["accounts"] for _column, value in a.extra_cells}
    # Snoozed CTAs are not work today.
    assert counts == {"Mine Co": 2, "Quiet Co": None, "Theirs Co": 1}
    html = response.content.decode()
    assert "Open CTAs</th>" in html and 'aria-label="2 open CTAs on Mine Co"' in html
    assert 'data-testid="book-panels"' not in html  # the panels are on one's own book


def test_my_book_panels_show_my_ctas_tasks_due_and_renewals(client, org, bob, bobs_work):
    client.force_login(bob)
    response = client.get(reverse("my-book", args=[org.slug]))
    work = response.context["my_work"]
    assert work.cta_summary == {"open": 2, "overdue": 1}
    assert [c.pk for c in work.ctas][0] == bobs_work["first"].pk  # the overdue one first
    assert {k: [t.title for t in v] for k, v in work.tasks.items()} == {
        "overdue": ["Overdue call"],
        "today": ["Today mail"],
        "week": ["This week"],
    }
    assert [r.account.name for r in response.context["my_renewals"].rows] == ["Mine Co"]
    html = response.content.decode()
    for testid in ("book-ctas", "book-tasks", "book-renewals"):
        assert f'data-testid="{testid}"' in html
    assert "Daves task" not in html and "Hidden while snoozed" not in html and "Next month" not in html


def test_my_book_panels_are_empty_for_someone_without_work(client, org, bob, make_member, bobs_work):
    dave_less = make_member(org, "csm").user
    AccountFactory(organization=org, owner=dave_less)
    client.force_login(dave_less)
    html = client.get(reverse("my-book", args=[org.slug])).content.decode()
    assert "No open CTA." in html and "No task due this week." in html and "No renewal due" in html


def test_my_book_with_work_keeps_a_constant_query_count(client, org, bob, django_assert_num_queries):
    from .test_pages import MY_BOOK_OWN_QUERIES, MY_BOOK_QUERIES

    today = timezone.localdate()
    client.force_login(bob)

    def add(n: int) -> None:
        for i in range(n):
            account = AccountFactory(organization=org, owner=bob)
            open_cta(account, due_in_days=i - 2, tasks=[TaskTemplate("t", i % 8), TaskTemplate("u", -1)])
            end = today + dt.timedelta(days=10 + i)
            renewal_for(contract_with_lines(org, account=account, start=today - dt.timedelta(days=300), end=end))

    for n in (2, 12):
        add(n)
        with django_assert_num_queries(MY_BOOK_OWN_QUERIES):
            assert client.get(reverse("my-book", args=[org.slug])).status_code == 200
        with django_assert_num_queries(MY_BOOK_QUERIES):
            assert client.get(reverse("my-book", args=[org.slug]), {"scope": "all"}).status_code == 200
    assert CtaTask.objects.for_org(org).count() == 28
