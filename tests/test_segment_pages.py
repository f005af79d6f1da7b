"""The segments admin pages: the list (stored member counts, last refresh), the editor (rows and nested
groups round-trip, every problem shown, nothing saved on Preview), the live preview fragment, and roles."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from accounts.models import Account, Segment
from accounts.segment_membership import refresh_memberships

from .factories import AccountFactory

pytestmark = pytest.mark.django_db


def with_arr(org, arr: str, **kwargs) -> Account:
    account = AccountFactory(organization=org, **kwargs)
    Account.all_orgs.filter(pk=account.pk).update(arr=Decimal(arr))
    return account


def rows(**conditions) -> dict[str, str]:
    return conditions


@pytest.fixture
def admin(client, alice):
    client.force_login(alice)
    return client


def test_list_shows_member_counts_and_last_refresh(admin, org):
    with_arr(org, "600000")
    refresh_memberships(org.pk)
    high = Segment.objects.for_org(org).get(name="High touch")
    page = admin.get(f"/o/{org.slug}/admin/segments/").content.decode()
    assert "High touch" in page and f'data-testid="members-{high.pk}">1<' in page


def test_preview_fragment_counts_and_samples_without_saving(admin, org, other_org):
    with_arr(org, "150000", name="Biggest")
    with_arr(org, "120000", name="Big")
    with_arr(org, "10", name="Small")
    with_arr(other_org, "900000", name="Stranger")
    before = Segment.all_orgs.count()
    body = {"match": "all", "cond-0-field": "arr", "cond-0-op": "gte", "cond-0-value": "100000", "cond-1-field": ""}
    page = admin.post(f"/o/{org.slug}/admin/segments/preview/", body).content.decode()
    assert 'data-testid="preview-count">2<' in page
    assert page.index("Biggest") < page.index(">Big<") and "Stranger" not in page and "Small" not in page
    assert Segment.all_orgs.count() == before
    bad = dict(body, **{"cond-0-value": "lots"})
    page = admin.post(f"/o/{org.slug}/admin/segments/preview/", bad).content.decode()
    assert "rules.conditions.0.value: &#x27;lots&#x27; is not a number" in page


def test_editor_saves_rows_and_nested_groups_and_round_trips(admin, org):
    group = {
        "any": [{"field": "region", "op": "eq", "value": "EMEA"}, {"field": "open_p1_tickets", "op": "gte", "value": 1}]
    }
    groups = json.dumps([group])
    body = {
        "name": "Risky EMEA", "description": "", "position": "5", "match": "all", "action": "save",
        "cond-0-field": "touch_model", "cond-0-op": "in", "cond-0-value": "high, low",
        "cond-1-field": "days_to_renewal", "cond-1-op": "lte", "cond-1-value": "90",
        "cond-2-field": "", "groups": groups,
    }  # fmt: skip
    response = admin.post(f"/o/{org.slug}/admin/segments/new/", body)
    assert response.status_code == 302
    segment = Segment.objects.for_org(org).get(name="Risky EMEA")
    assert segment.rules == {
        "match": "all",
        "conditions": [
            {"field": "touch_model", "op": "in", "value": ["high", "low"]},
            {"field": "days_to_renewal", "op": "lte", "value": "90"},
            group,
        ],
    }  # fmt: skip
    page = admin.get(response["Location"]).content.decode()
    assert 'value="high, low"' in page and "open_p1_tickets" in page
    # Saving again what the editor shows changes nothing.
    again = dict(body, name="Risky EMEA")
    assert admin.post(response["Location"], again).status_code == 302
    segment.refresh_from_db()
    assert len(segment.rules["conditions"]) == 3


def test_rows_in_a_group_make_a_nested_or_and_round_trip_as_rows(admin, org):
    """ARR ≥ 100k AND (region EMEA OR region APAC), built from rows alone: the preview counts the accounts
    that hold it, the saved rules nest the group, and the page shows the group's rows selected again."""
    with_arr(org, "200000", region="EMEA")
    with_arr(org, "200000", region="APAC")
    with_arr(org, "200000", region="NA")  # big, but in neither region
    with_arr(org, "50000", region="EMEA")  # in a region, too small
    body = {
        "name": "Big EMEA or APAC", "description": "", "position": "5", "match": "all", "action": "save",
        "cond-0-field": "arr", "cond-0-op": "gte", "cond-0-value": "100000", "cond-0-group": "",
        "cond-1-field": "region", "cond-1-op": "eq", "cond-1-value": "EMEA", "cond-1-group": "1",
        "cond-2-field": "region", "cond-2-op": "eq", "cond-2-value": "APAC", "cond-2-group": "1",
        "cond-3-field": "", "group-1-match": "any", "group-2-match": "all", "groups": "",
    }  # fmt: skip
    preview = admin.post(f"/o/{org.slug}/admin/segments/preview/", body).content.decode()
    assert 'data-testid="preview-count">2<' in preview.replace("\n", "")
    response = admin.post(f"/o/{org.slug}/admin/segments/new/", body)
    assert response.status_code == 302
    segment = Segment.objects.for_org(org).get(name="Big EMEA or APAC")
    assert segment.rules == {
        "match": "all",
        "conditions": [
            {"field": "arr", "op": "gte", "value": "100000"},
            {"any": [{"field": "region", "op": "eq", "value": "EMEA"},
                     {"field": "region", "op": "eq", "value": "APAC"}]},
        ],
    }  # fmt: skip
    page = admin.get(response["Location"]).content.decode()
    assert '<option value="1" selected>group A</option>' in page
    assert page.count('<option value="1" selected>group A</option>') == 2
    assert 'name="groups" rows="6" spellcheck="false" aria-describedby="seg-groups-help"></textarea>' in page


def test_the_editor_keeps_deeper_nesting_and_a_third_group_as_json():
    from accounts.segment_editor import rows_from_rules

    leaf = {"field": "region", "op": "eq", "value": "EMEA"}
    deep = {"all": [leaf, {"any": [leaf, leaf]}]}
    rules = {"match": "any", "conditions": [leaf, {"all": [leaf]}, {"any": [leaf, leaf]}, {"all": [leaf]}, deep]}
    match, rows, group_matches, groups_json = rows_from_rules(rules)
    assert match == "any"
    assert [r["group"] for r in rows] == ["", "1", "2", "2"]
    assert group_matches == {"1": "all", "2": "any"}
    assert json.loads(groups_json) == [{"all": [leaf]}, deep]


def test_editor_refuses_invalid_rules_and_preview_saves_nothing(admin, org):
    body = {"name": "Broken", "position": "1", "match": "all", "action": "save",
            "cond-0-field": "arr", "cond-0-op": "contains", "cond-0-value": "x", "groups": "[{oops"}  # fmt: skip
    response = admin.post(f"/o/{org.slug}/admin/segments/new/", body)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nested groups: not valid JSON" in page and "rules.conditions.0.op" in page
    assert not Segment.objects.for_org(org).filter(name="Broken").exists()
    preview = dict(body, action="preview", groups="", **{"cond-0-op": "gte", "cond-0-value": "0"})
    assert admin.post(f"/o/{org.slug}/admin/segments/new/", preview).status_code == 200
    assert not Segment.objects.for_org(org).filter(name="Broken").exists()


@pytest.mark.parametrize("role", ["viewer", "csm", "leader"])
def test_only_admins_reach_the_pages(client, org, make_member, role):
    client.force_login(make_member(org, role).user)
    assert client.get(f"/o/{org.slug}/admin/segments/").status_code == 403
    assert client.post(f"/o/{org.slug}/admin/segments/preview/", {}).status_code == 403


def test_another_organizations_segment_is_a_404(admin, org, other_org):
    theirs = Segment.all_orgs.create(organization=other_org, name="Theirs", rules={})
    assert admin.get(f"/o/{org.slug}/admin/segments/{theirs.pk}/").status_code == 404
