"""The page shell (issues #10 §4, #19 §4-5): the navigation, the 403 page, the help links, what My book
offers to whom, the override form's empty colour, and ReDoc's old address."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from health.forms import OverrideForm
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def nav(html: str) -> str:
    return re.search(r'<nav class="nav" aria-label="Main">(.*?)</nav>', html, re.S).group(1)


def current_nav_entry(html: str) -> str:
    entry = re.search(r'<a [^>]*aria-current="page"[^>]*>(.*?)</a>', nav(html), re.S)
    return re.sub(r"<[^>]+>", "", entry.group(1)).strip() if entry else ""


def test_every_built_screen_is_in_the_navigation(client, org, bob):
    client.force_login(bob)
    html = client.get(reverse("my-book", args=[org.slug])).content.decode()
    assert "Portfolio" in nav(html) and "Renewals" in nav(html)
    assert reverse("work", args=[org.slug]) in nav(html)  # built now (issue 12): in the navigation
    assert reverse("voice", args=[org.slug]) in nav(html)  # built now (issue 13)
    assert reverse("feature-requests", args=[org.slug]) in nav(html)  # built (issue 13 §3): in the navigation
    assert client.get(reverse("work", args=[org.slug])).status_code == 200
    assert client.get(reverse("voice", args=[org.slug])).status_code == 200


@pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
def test_my_book_in_the_navigation_is_ones_own_book(client, org, make_member, role):
    """Admins and leaders who own nothing used to land on All accounts with "Accounts" highlighted."""
    user = make_member(org, role).user
    AccountFactory(organization=org, name="Someone else's")
    client.force_login(user)
    html = client.get(reverse("my-book", args=[org.slug])).content.decode()
    my_book_link = re.search(r'<a href="([^"]+)"[^>]*>\s*<svg[^>]*>.*?</svg>My book</a>', nav(html), re.S).group(1)
    assert my_book_link.endswith("?scope=mine")
    page = client.get(my_book_link)
    assert page.context["scope"] == "mine"
    body = page.content.decode()
    assert current_nav_entry(body) == "My book"
    assert "<h1>My book</h1>" in body and "Someone else&#x27;s" not in body
    everyone = client.get(reverse("my-book", args=[org.slug]) + "?scope=all").content.decode()
    assert current_nav_entry(everyone) == "Accounts"


def test_an_empty_book_offers_no_export_and_only_admins_get_the_reimport_file(client, org, make_member, alice):
    viewer = make_member(org, "viewer").user
    client.force_login(viewer)
    empty = client.get(reverse("my-book", args=[org.slug]) + "?scope=mine").content.decode()
    assert "Your book is empty" in empty
    assert "CSV for re-import" not in empty and "Export CSV" not in empty
    AccountFactory(organization=org, owner=alice)
    everyone = client.get(reverse("my-book", args=[org.slug]) + "?scope=all").content.decode()
    assert "Export CSV" in everyone and "CSV for re-import" not in everyone  # a viewer cannot import it back
    client.force_login(alice)
    mine = client.get(reverse("my-book", args=[org.slug]) + "?scope=mine").content.decode()
    assert "Export CSV" in mine and "CSV for re-import" in mine


def test_the_403_page_keeps_the_navigation(client, org, bob):
    client.force_login(bob)
    response = client.get(reverse("admin-members", args=[org.slug]))
    assert response.status_code == 403
    html = response.content.decode()
    assert 'data-testid="forbidden"' in html
    assert reverse("portfolio", args=[org.slug]) in nav(html) and "Renewals" in nav(html)
    assert "Admin" not in nav(html)  # still not offered to a CSM
    assert "Csm" in html or "CSM" in html  # says which role lacks the right


def test_a_non_member_gets_a_404_that_reveals_nothing_of_the_org(client, org, charlie):
    client.force_login(charlie)
    response = client.get(reverse("portfolio", args=[org.slug]))
    assert response.status_code == 404
    assert org.name not in response.content.decode()


def test_api_docs_are_linked_from_the_api_keys_page_and_the_help_menu(client, org, alice, bob):
    client.force_login(alice)
    keys = client.get(reverse("admin-api-keys", args=[org.slug])).content.decode()
    block = re.search(r'data-testid="api-docs-link">(.*?)</p>', keys, re.S).group(1)
    assert f'href="{reverse("api-docs")}"' in block
    client.force_login(bob)
    html = client.get(reverse("my-book", args=[org.slug])).content.decode()
    help_menu = re.search(r'<details class="help-menu">(.*?)</details>', html, re.S).group(1)
    assert f'href="{reverse("api-docs")}"' in help_menu
    assert client.get(reverse("api-docs")).status_code == 200


def test_redoc_is_not_served_and_its_address_leads_to_the_local_docs(client):
    response = client.get("/api/redoc/")
    assert response.status_code == 302 and response["Location"] == reverse("api-docs")
    docs = client.get(reverse("api-docs")).content.decode()
    assert "fonts.googleapis.com" not in docs and "redoc" not in docs.lower()
    assert re.search(r'<script src="[^"]*\?script=', docs)  # the init script is a file, not inline


def test_the_override_form_has_no_preselected_colour():
    form = OverrideForm()
    html = str(form["color"])
    assert '<option value="" selected>Choose a colour…</option>' in html
    assert not OverrideForm({"reason_code": "other", "reason": "x"}).is_valid()
    bound = OverrideForm({"reason_code": "other", "reason": "x"})
    bound.is_valid()
    assert "color" in bound.errors


def test_the_org_switcher_name_contains_its_visible_text(client, org, bob):
    """axe's label-content-name-mismatch: no aria-label that differs from what the summary shows."""
    client.force_login(bob)
    html = client.get(reverse("my-book", args=[org.slug])).content.decode()
    summary = re.search(r'<details class="org-switcher">\s*<summary([^>]*)>(.*?)</summary>', html, re.S)
    assert "aria-label" not in summary.group(1)
    text = re.sub(r"<[^>]+>", "", summary.group(2))
    assert "Acme Corp" in text and "Organization" in text


def test_the_filter_form_as_submitted_with_any_stage_filters(client, org, alice):
    """The filter bar sends every select, "Any" as a blank: that used to fail as an invalid stage."""
    AccountFactory(organization=org, name="High one", touch_model="high")
    AccountFactory(organization=org, name="Low one", touch_model="low")
    client.force_login(alice)
    response = client.get(
        reverse("my-book", args=[org.slug]),
        {"scope": "all", "q": "", "lifecycle_stage": "", "touch_model": "high", "industry": "", "tag": ""},
    )
    assert not response.context["filter"].errors
    assert [a.name for a in response.context["accounts"]] == ["High one"]
