"""Feature request pages per role (issue 13 §5): everyone reads the board and a request; CSMs create and link
their book; admins and leaders change the status, edit and merge; another organization's member gets 404; the
integrations page is the admins'. Account 360 lists the account's requests with its form."""

from __future__ import annotations

import pytest
from django.urls import reverse

from feedback import requests as svc
from feedback.models_requests import FeatureRequest, FeatureRequestLink
from health import inbound
from health.models import InboundHook

from .factories import AccountFactory

pytestmark = pytest.mark.django_db
ROLES = ("admin", "leader", "csm", "viewer")


@pytest.fixture
def fr(org):
    return svc.create_request(org, title="Offline mode", product_area="Mobile")


def urls(org, fr) -> list[str]:
    return [reverse("feature-requests", args=[org.slug]), reverse("feature-request", args=[org.slug, fr.pk])]


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_board_and_a_request(client, org, make_member, fr, role):
    client.force_login(make_member(org, role).user)
    for url in urls(org, fr):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Offline mode" in response.content.decode()
    board = client.get(urls(org, fr)[0]).content.decode()
    assert ('data-testid="new-request"' in board) is (role != "viewer")


def test_another_organizations_member_and_anonymous_get_nothing(client, org, charlie, fr):
    for url in urls(org, fr):
        assert client.get(url).status_code == 302  # to the sign-in page
    client.force_login(charlie)
    for url in urls(org, fr):
        assert client.get(url).status_code == 404
    status_url = reverse("voice-request-status", args=[org.slug, fr.pk])
    assert client.post(status_url, {"status": "shipped"}).status_code == 404
    # ...and their own organization's URL with our request's id: 404 as well.
    assert client.get(reverse("feature-request", args=["globex", fr.pk])).status_code == 404
    fr.refresh_from_db()
    assert fr.status == "new"


@pytest.mark.parametrize("role", ROLES)
def test_who_may_create_change_status_and_merge(client, org, make_member, fr, role):
    client.force_login(make_member(org, role).user)
    created = client.post(reverse("feature-requests", args=[org.slug]), {"title": "SSO", "type": "feature"})
    assert created.status_code == (403 if role == "viewer" else 302)
    assert FeatureRequest.all_orgs.filter(title="SSO").exists() is (role != "viewer")
    manager = role in ("admin", "leader")
    moved = client.post(reverse("voice-request-status", args=[org.slug, fr.pk]), {"status": "planned"})
    assert moved.status_code == (302 if manager else 403)
    fr.refresh_from_db()
    assert fr.status == ("planned" if manager else "new")
    other = svc.create_request(org, title="Offline drafts")
    merged = client.post(reverse("voice-request-merge", args=[org.slug, other.pk]), {"into": fr.pk})
    assert merged.status_code == (302 if manager else 403)
    other.refresh_from_db()
    assert (other.merged_into_id == fr.pk) is manager


def test_csm_links_only_accounts_of_their_book(client, org, bob, make_member, fr):
    dave = make_member(org, "csm").user
    mine = AccountFactory(organization=org, owner=bob, external_id="MINE-1")
    AccountFactory(organization=org, owner=dave, external_id="DAVE-1")
    client.force_login(bob)
    url = reverse("voice-request-link", args=[org.slug, fr.pk])
    refused = client.post(url, {"account": "DAVE-1", "importance": "high"})
    assert refused.status_code == 400 and "your book" in refused.content.decode()
    unknown = client.post(url, {"account": "NOPE", "importance": "high"})
    assert unknown.status_code == 400 and "No account" in unknown.content.decode()
    assert client.post(url, {"account": "MINE-1", "importance": "high"}).status_code == 302
    link = FeatureRequestLink.all_orgs.get(request=fr)
    assert (link.account_id, link.requested_by_id, link.importance) == (mine.pk, bob.pk, "high")


def test_account_360_lists_requests_and_adds_one(client, org, bob, make_member):
    account = AccountFactory(organization=org, owner=bob)
    fr = svc.create_request(org, title="Audit log API")
    svc.link_account(fr, account, importance="critical")
    client.force_login(bob)
    page = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    assert 'data-testid="account-requests"' in page and "Audit log API" in page and "account-request-form" in page
    url = reverse("voice-request-from-account", args=[org.slug, account.pk])
    assert client.post(url, {"fr-title": "Dark mode", "fr-type": "feature", "fr-importance": "low"}).status_code == 302
    assert FeatureRequestLink.all_orgs.filter(account=account, request__title="Dark mode").exists()
    linked = client.post(url, {"fr-request": fr.pk, "fr-importance": "low"}, follow=True)
    assert "is linked to" in linked.content.decode()
    assert FeatureRequestLink.all_orgs.get(account=account, request=fr).importance == "low"
    # Neither a request nor a title: nothing is created.
    client.post(url, {"fr-importance": "low"})
    assert FeatureRequest.all_orgs.filter(organization=org).count() == 2
    # Another CSM's account: refused; a viewer sees no form.
    dave_account = AccountFactory(organization=org, owner=make_member(org, "csm").user)
    refused = client.post(reverse("voice-request-from-account", args=[org.slug, dave_account.pk]),
                          {"fr-title": "X", "fr-type": "feature", "fr-importance": "low"})  # fmt: skip
    assert refused.status_code == 403
    client.force_login(make_member(org, "viewer").user)
    page = client.get(reverse("account-detail", args=[org.slug, account.pk])).content.decode()
    assert "Audit log API" in page and "account-request-form" not in page


def test_the_board_filters_and_ranks(client, org, alice, bob):
    big, small = AccountFactory(organization=org, owner=bob), AccountFactory(organization=org, owner=bob)
    from accounts.models import Account

    Account.all_orgs.filter(pk=big.pk).update(arr=90000)
    Account.all_orgs.filter(pk=small.pk).update(arr=1000)
    low = svc.create_request(org, title="Small ask", product_area="Mobile", type="bug")
    high = svc.create_request(org, title="Big ask", product_area="Reporting")
    svc.link_account(low, small)
    svc.link_account(high, big)
    client.force_login(alice)
    board = reverse("feature-requests", args=[org.slug])
    page = client.get(board).content.decode()
    assert page.index("Big ask") < page.index("Small ask")
    assert "$90,000" in page
    assert "Big ask" not in client.get(board, {"area": "Mobile"}).content.decode()
    assert "Small ask" not in client.get(board, {"type": "feature"}).content.decode()
    assert "Big ask" not in client.get(board, {"q": "small"}).content.decode()
    svc.change_status(high, "shipped")
    assert "Big ask" not in client.get(board, {"status": "open"}).content.decode()


@pytest.mark.parametrize("role", ["leader", "csm", "viewer"])
def test_integrations_page_is_the_admins(client, org, make_member, role):
    client.force_login(make_member(org, role).user)
    url = reverse("admin-integrations", args=[org.slug])
    assert client.get(url).status_code == 403
    assert client.post(url, {"source": "tracker", "action": "enable"}).status_code == 403
    assert not InboundHook.all_orgs.exists()


def test_admin_enables_a_hook_sees_the_secret_once_and_maps_statuses(client, org, alice):
    client.force_login(alice)
    url = reverse("admin-integrations", args=[org.slug])
    enabled = client.post(url, {"source": "tracker", "action": "enable"}).content.decode()
    hook = InboundHook.all_orgs.get(organization=org, source="tracker")
    assert inbound.hook_secret(hook) in enabled and f"/hooks/{org.slug}/tracker/" in enabled
    assert inbound.hook_secret(hook) not in client.get(url).content.decode()
    bad = client.post(url, {"source": "tracker", "action": "map", "status_map": "Done = finished\nnoequals"})
    assert bad.status_code == 400 and "Line 1" in bad.content.decode() and "Line 2" in bad.content.decode()
    ok = client.post(url, {"source": "tracker", "action": "map", "status_map": "Done = shipped\nIn Progress = planned"})
    assert ok.status_code == 302
    hook.refresh_from_db()
    assert hook.status_map == {"Done": "shipped", "In Progress": "planned"}
    old = inbound.hook_secret(hook)
    rotated = client.post(url, {"source": "tracker", "action": "rotate"}).content.decode()
    hook.refresh_from_db()
    assert inbound.hook_secret(hook) != old and inbound.hook_secret(hook) in rotated
