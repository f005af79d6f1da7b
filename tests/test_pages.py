"""The server-rendered pages: access per role and organization, My book, Account 360 writes, admin."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account, Activity, ApiKey, JobRun, Membership, Objective
from accounts.services import refresh_current_arr
from playbooks.ctas import TaskTemplate, complete, open_or_update_cta
from tests.factories import (
    AccountFactory,
    ActivityFactory,
    ContactFactory,
    ContractFactory,
    ContractLineFactory,
    TeamFactory,
)

pytestmark = pytest.mark.django_db

MEMBER_PAGES = ["my-book", "portfolio", "renewals", "work", "voice"]
ADMIN_PAGES = [
    "admin-members", "admin-api-keys", "admin-jobs", "admin-cta-types", "admin-email-templates", "admin-playbook-new",
    "admin-surveys",
]  # fmt: skip
#: Admin pages leaders may read (the playbook list; a playbook's page is in tests/test_playbook_editor.py).
LEADER_PAGES = ["admin-playbooks"]


def page_urls(org, account, job=None) -> list[str]:
    urls = [reverse(name, args=[org.slug]) for name in MEMBER_PAGES + ADMIN_PAGES + LEADER_PAGES]
    urls.append(reverse("account-detail", args=[org.slug, account.pk]))
    if job is not None:
        urls.append(reverse("admin-job-detail", args=[org.slug, job.pk]))
    return urls


@pytest.fixture
def job(org):
    return JobRun.all_orgs.create(organization=org, kind="import_accounts", status="running", progress_total=10)


def login(client, user):
    client.force_login(user)
    return client


def set_arr(account: Account, arr: str, renewal: dt.date | None = None) -> None:
    # ARR is derived from contracts; tests that only sort on it write the denormalised columns directly.
    Account.all_orgs.filter(pk=account.pk).update(
        arr=Decimal(arr), hierarchy_arr=Decimal(arr), next_renewal_date=renewal
    )


# --- Access: anonymous, members, other organizations, roles ------------------------------------------


def test_anonymous_is_sent_to_login_from_every_page(client, org, account, job):
    for url in page_urls(org, account, job):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url


def page_title(response) -> str:
    match = re.search(r"<title>(.*?)</title>", response.content.decode(), re.S)
    return " ".join(match.group(1).split()) if match else ""


def test_admin_member_gets_every_page(client, org, alice, account, job):
    login(client, alice)
    # Each page is itself (its title) and of the organization named by the URL.
    titles = ["Accounts", "Portfolio", "Renewals", "Work queue", "Voice of the customer", "Members · Admin",
              "API keys · Admin", "Job runs · Admin", "CTA types · Admin", "Email templates · Admin",
              "New playbook · Playbooks · Admin", "Surveys · Admin", "Playbooks · Admin", account.name,
              f"Run #{job.pk} · Admin"]  # fmt: skip
    for url, title in zip(page_urls(org, account, job), titles, strict=True):
        response = client.get(url)
        assert response.status_code == 200, url
        assert page_title(response) == f"{title} · Acme Corp · Retain", url


def test_csm_gets_every_member_page(client, org, bob, account):
    login(client, bob)
    titles = {"my-book": "My book", "portfolio": "Portfolio", "renewals": "Renewals", "work": "Work queue",
              "voice": "Voice of the customer"}  # fmt: skip
    for name in MEMBER_PAGES:
        response = client.get(reverse(name, args=[org.slug]))
        assert response.status_code == 200, name
        assert page_title(response) == f"{titles[name]} · Acme Corp · Retain", name
    response = client.get(reverse("account-detail", args=[org.slug, account.pk]))
    assert response.status_code == 200 and account.name in page_title(response)
    assert account.name in response.content.decode()


def test_member_of_another_org_gets_404_for_every_page(client, org, other_org, charlie, account, job):
    login(client, charlie)
    for url in page_urls(org, account, job):
        assert client.get(url).status_code == 404, url
    post = client.post(reverse("account-log-activity", args=[org.slug, account.pk]), {"type": "call", "summary": "x"})
    assert post.status_code == 404
    assert not Activity.all_orgs.exists()


def test_account_of_another_org_is_404_inside_own_org(client, other_org, charlie, account, job):
    login(client, charlie)
    assert client.get(reverse("account-detail", args=[other_org.slug, account.pk])).status_code == 404
    log_url = reverse("account-log-activity", args=[other_org.slug, account.pk])
    assert client.post(log_url, {"type": "call", "summary": "x"}).status_code == 404
    assert client.get(reverse("admin-job-detail", args=[other_org.slug, job.pk])).status_code == 404
    assert not Activity.all_orgs.exists()


@pytest.mark.parametrize("role", ["csm", "leader", "viewer"])
def test_admin_pages_are_forbidden_to_other_roles(client, org, make_member, role, job):
    user = make_member(org, role).user
    login(client, user)
    for name in ADMIN_PAGES:
        assert client.get(reverse(name, args=[org.slug])).status_code == 403, name
    assert client.get(reverse("admin-job-detail", args=[org.slug, job.pk])).status_code == 403
    assert client.post(reverse("admin-api-keys", args=[org.slug]), {"name": "x", "role": "admin"}).status_code == 403
    assert not ApiKey.all_orgs.exists()


@pytest.mark.parametrize(("role", "status"), [("leader", 200), ("csm", 403), ("viewer", 403)])
def test_leader_pages_are_read_by_leaders_only(client, org, make_member, role, status):
    login(client, make_member(org, role).user)
    for name in LEADER_PAGES:
        assert client.get(reverse(name, args=[org.slug])).status_code == status, name


def test_home_redirects_to_first_orgs_my_book(client, org, bob):
    login(client, bob)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("my-book", args=[org.slug])


def test_home_without_membership_explains(client, django_user_model):
    user = django_user_model.objects.create_user(username="lonely@example.com", email="lonely@example.com")
    login(client, user)
    response = client.get("/")
    assert response.status_code == 403
    assert b"not a member of any organization" in response.content


def test_login_and_logout_pages(client, org, bob):
    login_page = client.get(reverse("login"))
    assert login_page.status_code == 200 and 'name="password"' in login_page.content.decode()
    response = client.post(reverse("login"), {"username": bob.username, "password": "pw-for-tests"})
    assert response.status_code == 302
    book = client.get(reverse("my-book", args=[org.slug]))
    assert book.status_code == 200 and book.context["user"] == bob
    assert client.get(reverse("logout")).status_code == 405  # logout is a POST (CSRF-protected) only
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("my-book", args=[org.slug])).status_code == 302


def test_org_switcher_links_to_the_same_screen_in_each_org(client, org, other_org, bob):
    Membership.all_orgs.create(organization=other_org, user=bob, role="viewer")
    login(client, bob)
    html = client.get(reverse("renewals", args=[org.slug])).content.decode()
    assert reverse("renewals", args=[other_org.slug]) in html
    assert "Globex" in html and "Acme Corp" in html


# --- My book --------------------------------------------------------------------------------------


def row_names(response) -> list[str]:
    return [account.name for account in response.context["accounts"]]


def test_my_book_defaults_to_my_accounts_with_a_toggle_to_all(client, org, bob, make_member):
    other = make_member(org, "csm").user
    mine = AccountFactory(organization=org, owner=bob, name="Mine Inc")
    AccountFactory(organization=org, owner=other, name="Theirs Inc")
    set_arr(mine, "120000")
    login(client, bob)
    response = client.get(reverse("my-book", args=[org.slug]))
    assert row_names(response) == ["Mine Inc"]
    assert "$120,000" in response.content.decode()
    response = client.get(reverse("my-book", args=[org.slug]), {"scope": "all"})
    assert row_names(response) == ["Mine Inc", "Theirs Inc"]


def test_viewer_home_lists_all_accounts(client, org, bob, make_member):
    AccountFactory(organization=org, owner=bob, name="Bob's Co")
    login(client, make_member(org, "viewer").user)
    url = reverse("my-book", args=[org.slug])
    assert row_names(client.get(url)) == ["Bob's Co"]
    assert row_names(client.get(url, {"scope": "mine"})) == []


def test_my_book_filters_change_the_rows(client, org, bob):
    a = AccountFactory(organization=org, owner=bob, name="Alpha", touch_model="high", industry="Fintech")
    b = AccountFactory(organization=org, owner=bob, name="Beta", touch_model="low", industry="Retail")
    c = AccountFactory(organization=org, owner=bob, name="Gamma", touch_model="high", industry="Retail", tags=["vip"])
    today = timezone.localdate()
    set_arr(a, "50000", today + dt.timedelta(days=20))
    set_arr(b, "250000", today + dt.timedelta(days=200))
    set_arr(c, "900000", today + dt.timedelta(days=60))
    login(client, bob)
    url = reverse("my-book", args=[org.slug])
    assert row_names(client.get(url, {"touch_model": "high"})) == ["Alpha", "Gamma"]
    assert row_names(client.get(url, {"industry": "retail"})) == ["Beta", "Gamma"]
    assert row_names(client.get(url, {"arr_min": "100000", "arr_max": "500000"})) == ["Beta"]
    assert row_names(client.get(url, {"renews_within": "90"})) == ["Alpha", "Gamma"]
    assert row_names(client.get(url, {"tag": "vip"})) == ["Gamma"]
    assert row_names(client.get(url, {"q": "amm"})) == ["Gamma"]
    response = client.get(url, {"touch_model": "high", "industry": "Retail"})
    assert row_names(response) == ["Gamma"]
    assert response.context["summary"] == {
        "count": 1,
        "total_arr": Decimal("900000.00"),
        "renewing_90": 1,
        "renewing_90_arr": Decimal("900000.00"),
    }
    assert "1 renews in the next 90 days ($900k)" in response.content.decode()


def test_my_book_bad_filter_value_is_reported(client, org, bob):
    AccountFactory(organization=org, owner=bob)
    login(client, bob)
    response = client.get(reverse("my-book", args=[org.slug]), {"arr_min": "lots"})
    assert response.status_code == 200
    assert "Enter a number" in response.content.decode()


def test_my_book_ordering_by_whitelisted_columns(client, org, bob, make_member):
    zed = make_member(org, "csm", first_name="Zed", last_name="Z").user
    amy = make_member(org, "csm", first_name="Amy", last_name="A").user
    today = timezone.localdate()
    small = AccountFactory(organization=org, owner=zed, name="Small", customer_since=dt.date(2020, 1, 1))
    big = AccountFactory(organization=org, owner=amy, name="Big", customer_since=dt.date(2024, 1, 1))
    mid = AccountFactory(organization=org, owner=None, name="Mid", customer_since=None)
    set_arr(small, "1000", today + dt.timedelta(days=300))
    set_arr(big, "900000", today + dt.timedelta(days=10))
    set_arr(mid, "50000", None)
    login(client, bob)
    url = reverse("my-book", args=[org.slug])

    def order(value: str) -> list[str]:
        return row_names(client.get(url, {"scope": "all", "ordering": value}))

    assert order("-arr") == ["Big", "Mid", "Small"]
    assert order("arr") == ["Small", "Mid", "Big"]
    assert order("renewal") == ["Big", "Small", "Mid"]  # no renewal date sorts last
    assert order("-renewal") == ["Small", "Big", "Mid"]
    assert order("owner") == ["Big", "Small", "Mid"]  # Amy, Zed, unassigned last
    assert order("since") == ["Small", "Big", "Mid"]
    assert order("-name") == ["Small", "Mid", "Big"]
    assert order("organization_id") == ["Big", "Mid", "Small"]  # not whitelisted: default (name)
    assert order("password") == ["Big", "Mid", "Small"]


def test_my_book_paginates_by_50(client, org, bob):
    AccountFactory.create_batch(55, organization=org, owner=bob)
    login(client, bob)
    url = reverse("my-book", args=[org.slug])
    first = client.get(url)
    assert len(first.context["accounts"]) == 50
    assert "Page 1 of 2" in first.content.decode()
    second = client.get(url, {"page": "2"})
    assert len(second.context["accounts"]) == 5
    assert not set(row_names(first)) & set(row_names(second))


def my_book_queries(client, django_assert_num_queries, url, expected: int) -> None:
    with django_assert_num_queries(expected):
        response = client.get(url)
    assert response.status_code == 200


# Session, user, membership (org_page), the org switcher, the count+ARR aggregate, the page of accounts
# with their owners, the industry and region choices, and (all accounts only) the owner choices.
# …and the segment choices of the health filter.
# …and the notification bell's unread count.
# …and the open-CTA column (playbooks, one grouped query for the rows shown).
MY_BOOK_QUERIES = 12
# One's own book: no owner choices, plus "does the user own any?", and the panels of the other apps: my open
# CTAs (count, the most urgent), my tasks due, my renewals in the next 90 days.
# …and my new detractors of the last 30 days (feedback).
MY_BOOK_OWN_QUERIES = MY_BOOK_QUERIES + 5


def test_my_book_query_count_is_constant(client, org, bob, make_member, django_assert_num_queries):
    others = [make_member(org, "csm").user for _ in range(3)]
    url = reverse("my-book", args=[org.slug]) + "?scope=all&ordering=owner"
    for i in range(10):
        AccountFactory(organization=org, owner=others[i % 3], industry=f"Ind {i % 4}", tags=["a", "b"])
    login(client, bob)
    my_book_queries(client, django_assert_num_queries, url, MY_BOOK_QUERIES)
    for i in range(50):
        AccountFactory(organization=org, owner=others[i % 3] if i % 5 else bob, region=f"R{i % 6}")
    my_book_queries(client, django_assert_num_queries, url, MY_BOOK_QUERIES)
    # The default page (own book) costs one query less than all accounts, plus one: does the user own any?
    # …plus its panels.
    my_book_queries(client, django_assert_num_queries, reverse("my-book", args=[org.slug]), MY_BOOK_OWN_QUERIES)


def test_my_book_shows_the_owner_column_only_across_books(client, org, bob):
    """One's own book has no Owner column (every row would repeat one's name, pushing Tags off screen)."""
    AccountFactory(organization=org, owner=bob, name="Mine Co")
    login(client, bob)
    url = reverse("my-book", args=[org.slug])
    mine = client.get(url + "?scope=mine").content.decode()
    everyone = client.get(url + "?scope=all").content.decode()
    assert "ordering=owner" not in mine and bob.get_full_name() not in mine.split("<tbody>")[1]
    assert "ordering=owner" in everyone and bob.get_full_name() in everyone.split("<tbody>")[1]


def test_my_book_empty_state_helps(client, org, bob):
    login(client, bob)
    html = client.get(reverse("my-book", args=[org.slug]) + "?scope=mine").content.decode()
    assert "Your book is empty" in html
    assert "?scope=all" in html


def test_my_book_starts_on_all_accounts_for_someone_without_a_book(client, org, bob, alice):
    AccountFactory(organization=org, owner=bob, name="Bobs Account")
    login(client, alice)  # an admin who owns nothing
    response = client.get(reverse("my-book", args=[org.slug]))
    assert response.context["scope"] == "all"
    assert "Bobs Account" in response.content.decode()
    login(client, bob)
    assert client.get(reverse("my-book", args=[org.slug])).context["scope"] == "mine"


# --- Account 360 ---------------------------------------------------------------------------------


def test_account_360_shows_contracts_contacts_coverage_and_timeline(client, org, bob, account):
    child = AccountFactory(organization=org, owner=bob, parent=account, name="Child Co")
    contract = ContractFactory(
        account=account,
        start_date=timezone.localdate() - dt.timedelta(days=30),
        end_date=timezone.localdate() + dt.timedelta(days=200),
    )
    ContractLineFactory(
        contract=contract, quantity=Decimal("10"), annual_unit_price=Decimal("1200"), discount=Decimal("0.25")
    )
    child_contract = ContractFactory(account=child, start_date=contract.start_date, end_date=contract.end_date)
    ContractLineFactory(contract=child_contract, quantity=Decimal("1"), annual_unit_price=Decimal("1000"))
    ContactFactory(account=account, name="Cara Champion", roles=["champion"])
    ContactFactory(account=account, name="Gone Sponsor", roles=["executive_sponsor"], is_active=False)
    ActivityFactory(account=account, summary="Older call", occurred_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    ActivityFactory(
        account=account, summary="Newer QBR", type="qbr", occurred_at=dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    )
    refresh_current_arr(org)  # the signal refreshes on commit, which a test transaction never reaches
    login(client, bob)
    response = client.get(reverse("account-detail", args=[org.slug, account.pk]))
    html = response.content.decode()
    assert "$9,000" in html  # 10 × 1200 × 0.75
    assert "$10,000" in html  # hierarchy ARR with the child
    assert "Child Co" in html
    assert html.index("Newer QBR") < html.index("Older call")
    coverage = {row["role"].value: row for row in response.context["coverage"]}
    assert [c.name for c in coverage["champion"]["active"]] == ["Cara Champion"]
    assert coverage["executive_sponsor"]["active"] == []
    assert [c.name for c in coverage["executive_sponsor"]["departed"]] == ["Gone Sponsor"]
    assert coverage["economic_buyer"]["active"] == [] and coverage["economic_buyer"]["departed"] == []
    assert "Not scored yet" in html


def test_account_360_shows_a_line_discount_without_trailing_zeros(client, org, bob, account):
    """Regression: a discount stored as ``0.0500`` was shown as ``5.000%``."""
    contract = ContractFactory(
        account=account,
        start_date=timezone.localdate() - dt.timedelta(days=30),
        end_date=timezone.localdate() + dt.timedelta(days=200),
    )
    ContractLineFactory(contract=contract, quantity=Decimal("10"), annual_unit_price=Decimal("100"), discount="0.05")
    ContractLineFactory(contract=contract, quantity=Decimal("1"), annual_unit_price=Decimal("100"), discount="0.125")
    login(client, bob)
    html = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    assert ">5%<" in html and ">12.5%<" in html
    assert "5.000%" not in html and "12.50%" not in html


def test_account_360_of_a_churned_account_says_why_it_has_no_score_or_renewal(client, org, bob):
    """Regression: a churned account read "Not scored yet" (it never will be) and "One opens 120 days before
    a contract ends" (it has no contract left)."""
    gone = AccountFactory(organization=org, owner=bob, churned_at=dt.date(2026, 10, 20), lifecycle_stage="churned")
    idle = AccountFactory(organization=org, owner=bob)  # live, but holds no contract
    login(client, bob)
    html = client.get(reverse("account-detail", args=[org.slug, gone.pk])).content.decode()
    assert "Not scored: churned" in html and "Not scored yet" not in html
    assert "the customer churned on Oct 20, 2026" in html and "One opens" not in html
    assert 'data-testid="override-form"' not in html  # nothing to override on a churned account
    html = client.get(reverse("account-detail", args=[org.slug, idle.pk])).content.decode()
    assert "Not scored yet" in html and "the account has no live contract" in html
    assert 'data-testid="override-form"' in html  # bob owns it: a live account takes an override


def log_url(org, account) -> str:
    return reverse("account-log-activity", args=[org.slug, account.pk])


def test_csm_logs_activity_on_own_account(client, org, bob, account):
    contact = ContactFactory(account=account)
    login(client, bob)
    response = client.post(
        log_url(org, account),
        {"type": "meeting", "occurred_at": "2026-11-20T10:30", "summary": "Kick-off", "contacts": [contact.pk]},
    )
    assert response.status_code == 302
    assert response["Location"].endswith(reverse("account-detail", args=[org.slug, account.pk]) + "#timeline")
    activity = Activity.all_orgs.get()
    assert (activity.account, activity.author, activity.type, activity.summary) == (account, bob, "meeting", "Kick-off")
    assert activity.organization_id == org.pk
    assert list(activity.contacts.all()) == [contact]


def test_log_activity_with_htmx_returns_the_timeline_panel(client, org, bob, account):
    login(client, bob)
    response = client.post(
        log_url(org, account),
        {"type": "call", "occurred_at": "2026-11-20T10:30", "summary": "Quick sync"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Quick sync" in html and 'id="timeline"' in html
    assert "<html" not in html  # a fragment, not a page
    assert Activity.all_orgs.get().author == bob


def test_log_activity_errors_are_shown_and_nothing_is_saved(client, org, bob, account, other_org):
    foreign_contact = ContactFactory(account=AccountFactory(organization=other_org))
    login(client, bob)
    response = client.post(log_url(org, account), {"type": "call", "occurred_at": "", "summary": ""})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    response = client.post(
        log_url(org, account),
        {"type": "call", "occurred_at": "2026-11-20T10:30", "summary": "x", "contacts": [foreign_contact.pk]},
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    response = client.post(
        log_url(org, account),
        {"type": "teleport", "occurred_at": "2026-11-20T10:30", "summary": "x"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Activity.all_orgs.exists()


def test_csm_cannot_log_on_another_csms_account(client, org, bob, make_member):
    theirs = AccountFactory(organization=org, owner=make_member(org, "csm").user)
    login(client, bob)
    page = client.get(reverse("account-detail", args=[org.slug, theirs.pk]))
    assert page.status_code == 200
    assert 'id="log-activity"' not in page.content.decode()
    assert client.post(log_url(org, theirs), {"type": "call", "summary": "x"}).status_code == 403
    assert not Activity.all_orgs.exists()


def test_viewer_sees_no_form_and_cannot_post(client, org, make_member, account):
    viewer = make_member(org, "viewer").user
    login(client, viewer)
    html = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    assert 'id="log-activity"' not in html and "Add objective" not in html
    assert client.post(log_url(org, account), {"type": "call", "summary": "x"}).status_code == 403
    objective_url = reverse("account-add-objective", args=[org.slug, account.pk])
    assert client.post(objective_url, {"title": "x", "status": "on_track", "progress": 0}).status_code == 403
    assert not Activity.all_orgs.exists() and not Objective.all_orgs.exists()


def test_leader_writes_accounts_of_their_team_only(client, org, make_member):
    leader = make_member(org, "leader").user
    team = TeamFactory(organization=org, manager=leader)
    member = make_member(org, "csm").user
    Membership.all_orgs.filter(user=member).update(team=team)
    outsider = make_member(org, "csm").user
    team_account = AccountFactory(organization=org, owner=member)
    other_account = AccountFactory(organization=org, owner=outsider)
    login(client, leader)
    assert (
        'id="log-activity"' in client.get(reverse("account-detail", args=[org.slug, team_account.pk])).content.decode()
    )
    data = {"type": "call", "occurred_at": "2026-11-20T10:30", "summary": "Exec check-in"}
    assert client.post(log_url(org, team_account), data).status_code == 302
    assert client.post(log_url(org, other_account), data).status_code == 403
    assert list(Activity.all_orgs.values_list("account_id", "author_id")) == [(team_account.pk, leader.pk)]


def test_add_objective_to_success_plan(client, org, bob, account):
    login(client, bob)
    url = reverse("account-add-objective", args=[org.slug, account.pk])
    data = {
        "title": "Cut ticket backlog",
        "customer_measure": "Open tickets",
        "baseline": "400",
        "target": "100",
        "due_date": "2027-03-31",
        "status": "on_track",
        "progress": "40",
    }
    assert client.post(url, data).status_code == 302
    objective = Objective.all_orgs.select_related("plan").get()
    assert objective.plan.account == account and objective.progress == 40
    html = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    assert "Cut ticket backlog" in html and 'max="100" value="40"' in html
    bad = client.post(url, {**data, "progress": "140"})
    assert bad.status_code == 400 and "less than or equal to 100" in bad.content.decode()
    assert Objective.all_orgs.count() == 1


# --- Admin ----------------------------------------------------------------------------------------


def test_admin_changes_a_role_and_keeps_one_admin(client, org, alice, bob):
    login(client, alice)
    url = reverse("admin-members", args=[org.slug])
    bob_seat = Membership.all_orgs.get(user=bob)
    assert client.post(url, {"membership": bob_seat.pk, "role": "leader"}).status_code == 302
    bob_seat.refresh_from_db()
    assert bob_seat.role == "leader"
    alice_seat = Membership.all_orgs.get(user=alice)
    response = client.post(url, {"membership": alice_seat.pk, "role": "csm"})
    assert response.status_code == 400 and "at least one admin" in response.content.decode()
    alice_seat.refresh_from_db()
    assert alice_seat.role == "admin"


def test_admin_cannot_touch_another_orgs_membership(client, org, alice, charlie):
    login(client, alice)
    charlie_seat = Membership.all_orgs.get(user=charlie)
    response = client.post(reverse("admin-members", args=[org.slug]), {"membership": charlie_seat.pk, "role": "viewer"})
    assert response.status_code == 404
    charlie_seat.refresh_from_db()
    assert charlie_seat.role == "admin"


def test_admin_invites_a_member_by_email(client, org, alice, bob):
    """Adding a person is an invitation they accept (the flow itself: tests/test_invitations.py)."""
    from accounts.models import Invitation

    login(client, alice)
    url = reverse("admin-members", args=[org.slug])
    response = client.post(url, {"action": "invite", "email": "New.Person@Example.com", "role": "viewer"})
    assert response.status_code == 302
    invitation = Invitation.all_orgs.get(email="new.person@example.com")
    assert (invitation.organization_id, invitation.role, invitation.status) == (org.pk, "viewer", "pending")
    assert not Membership.all_orgs.filter(user__email="new.person@example.com").exists()
    again = client.post(url, {"action": "invite", "email": bob.email, "role": "viewer"})
    assert again.status_code == 400 and "already a member" in again.content.decode()


def test_admin_creates_an_api_key_shown_once_and_revokes_it(client, org, alice):
    login(client, alice)
    url = reverse("admin-api-keys", args=[org.slug])
    response = client.post(url, {"name": "CRM sync", "role": "csm"})
    assert response.status_code == 200
    raw = re.search(r'id="raw-key">(rtn_[^<]+)<', response.content.decode()).group(1)
    key = ApiKey.authenticate(raw)
    assert key is not None and key.organization_id == org.pk and key.role == "csm"
    listing = client.get(url).content.decode()
    assert raw not in listing and key.key_prefix in listing
    assert client.post(reverse("admin-revoke-api-key", args=[org.slug, key.pk])).status_code == 302
    assert ApiKey.authenticate(raw) is None


def test_job_run_detail_polls_only_while_running(client, org, alice, job):
    login(client, alice)
    url = reverse("admin-job-detail", args=[org.slug, job.pk])
    partial = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in partial and "<html" not in partial
    JobRun.all_orgs.filter(pk=job.pk).update(
        status="failed", progress_done=10, errors=[{"line": 7, "column": "owner_email", "reason": "unknown user"}]
    )
    html = client.get(url).content.decode()
    assert "hx-trigger" not in html
    assert "unknown user" in html and "owner_email" in html
    listing = client.get(reverse("admin-jobs", args=[org.slug]), {"kind": "import"}).content.decode()
    assert f"#{job.pk}" in listing
    other_kind = client.get(reverse("admin-jobs", args=[org.slug]), {"kind": "recompute"}).content.decode()
    assert f"#{job.pk}" not in other_kind


def test_admin_cannot_revoke_another_orgs_key(client, org, other_org, alice):
    foreign, raw = ApiKey.issue(organization=other_org, role="admin")
    login(client, alice)
    assert client.post(reverse("admin-revoke-api-key", args=[org.slug, foreign.pk])).status_code == 404
    assert ApiKey.authenticate(raw) is not None


def build_account_360(account, n: int) -> None:
    contacts = [ContactFactory(account=account, roles=["champion"]) for _ in range(n)]
    for i in range(n):
        contract = ContractFactory(account=account)
        ContractLineFactory.create_batch(2, contract=contract)
        activity = ActivityFactory(account=account, occurred_at=dt.datetime(2026, 1, 1 + i, tzinfo=dt.UTC))
        activity.contacts.add(contacts[i], through_defaults={"organization": account.organization})
        # Feature requests the account waits on (the feature request panel), with their requesting CSM.
        from feedback.requests import create_request, link_account

        link_account(create_request(account.organization, title=f"Ask {n}-{i}"), account, requested_by=account.owner)
    Account.all_orgs.create(organization=account.organization, name=f"Child {n}", parent=account)
    # CTAs with their tasks (the CTA panel): open ones, and closed ones that stay in "Recently closed".
    reasons = ["health_red", "health_drop", "usage_drop", "key_contact_departed", "detractor", "invoice_overdue",
               "p1_ticket", "no_touch"]  # fmt: skip
    for reason in reasons[: n // 2]:
        cta, _ = open_or_update_cta(
            account=account,
            type="risk",
            reason=reason,
            title=reason,
            tasks=[TaskTemplate("Call", 1), TaskTemplate("Mail", 2)],
        )
        if reason.startswith("health"):
            complete(cta, outcome="resolved")


def test_account_360_query_count_is_constant(client, org, bob, account, django_assert_num_queries):
    url = reverse("account-detail", args=[org.slug, account.pk])
    login(client, bob)
    build_account_360(account, 2)
    with django_assert_num_queries(ACCOUNT_360_QUERIES):
        assert client.get(url).status_code == 200
    build_account_360(account, 8)
    with django_assert_num_queries(ACCOUNT_360_QUERIES):
        assert client.get(url).status_code == 200


# Session, user, membership, switcher, account, contacts, contracts + lines, children, activities +
# their contacts, plan + objectives, the form's contact choices, renewals (open and past, with churn
# reasons): nothing per contact, line or activity.
# The health panel: latest score + override, 90 days of snapshots, the override trail, recent pulses.
# The notification bell's unread count.
# The CTA panel: open and recent CTAs, their tasks.
# The feature request panel (the account's links with their requests, the open requests for its form) and
# the survey responses panel (the latest ten with their contact and survey), both feedback's.
# The business reviews panel (value's): the latest three reviews.
# The onboarding panel (value): the latest project with its milestone counts, and without one the handoff.
# The source panel (integrations): the organization's connections that pull accounts (one query, none when
# the account has no external id).
ACCOUNT_360_QUERIES = 29
