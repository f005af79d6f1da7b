"""Scorecards: the API (read by all, written by admins, every definition change a version, errors per
JSON path, preview) and the admin editor page (list, edit, preview, save with a note, history)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from health.defaults import DEFAULT_SCORECARD
from health.models import CsmPulse, Scorecard, ScorecardVersion
from health.services import recompute_health

from .factories import AccountFactory

pytestmark = pytest.mark.django_db
API = "/api/v1/scorecards/"


def default_card(org) -> Scorecard:
    return Scorecard.all_orgs.get(organization=org, is_default=True)


def pulse_only(weight: int = 10) -> dict:
    """A definition scoring the CSM pulse alone, with yellow worth 80 points (green instead of yellow)."""
    definition = copy.deepcopy(DEFAULT_SCORECARD)
    for c in definition["components"]:
        if c["key"] == "csm_pulse":
            c["function"]["points"]["yellow"] = 80
            c["weight"] = weight
    return definition


class TestScorecardApi:
    def test_list_shows_current_definition_and_versions(self, org, api):
        body = api(org, "viewer").get(API).json()
        card = body["results"][0]
        assert card["is_default"] is True
        assert card["current_version"]["number"] == 1
        assert card["current_version"]["definition"] == DEFAULT_SCORECARD
        assert [v["number"] for v in card["versions"]] == [1]

    @pytest.mark.parametrize("role", ["leader", "csm", "viewer"])
    def test_only_admins_write(self, org, api, role):
        card = default_card(org)
        client = api(org, role)
        assert client.patch(f"{API}{card.pk}/", {"name": "X"}, format="json").status_code == 403
        body = {"name": "New", "definition": DEFAULT_SCORECARD}
        assert client.post(API, body, format="json").status_code == 403
        assert (
            client.post(f"{API}{card.pk}/preview/", {"definition": DEFAULT_SCORECARD}, format="json").status_code == 403
        )

    def test_every_definition_change_is_a_version(self, org, api):
        card = default_card(org)
        client = api(org, "admin")
        changed = client.patch(f"{API}{card.pk}/", {"definition": pulse_only(), "note": "Pulse matters"}, format="json")
        assert changed.status_code == 200, changed.json()
        assert changed.json()["current_version"]["number"] == 2
        assert changed.json()["versions"][0]["note"] == "Pulse matters"
        same = client.patch(f"{API}{card.pk}/", {"definition": pulse_only(), "name": "Main"}, format="json")
        assert same.json()["current_version"]["number"] == 2  # unchanged definition: no new version
        assert same.json()["name"] == "Main"
        assert ScorecardVersion.all_orgs.filter(scorecard=card).count() == 2
        assert ScorecardVersion.all_orgs.get(scorecard=card, number=1).definition == DEFAULT_SCORECARD

    def test_errors_per_json_path(self, org, api):
        card = default_card(org)
        bad = copy.deepcopy(DEFAULT_SCORECARD)
        bad["components"][2]["weight"] = -5
        bad["components"][0]["signal"] = "astrology"
        response = api(org).patch(f"{API}{card.pk}/", {"definition": bad}, format="json")
        assert response.status_code == 400
        errors = response.json()["errors"]
        assert "definition.components.2.weight" in errors and "definition.components.0.signal" in errors
        assert ScorecardVersion.all_orgs.filter(scorecard=card).count() == 1
        preview = api(org).post(f"{API}{card.pk}/preview/", {"definition": bad}, format="json")
        assert preview.status_code == 400 and "definition.components.2.weight" in preview.json()["errors"]
        assert "definition" in api(org).patch(f"{API}{card.pk}/", {"definition": []}, format="json").json()["errors"]

    def test_default_cannot_be_bound_or_removed(self, org, api):
        card = default_card(org)
        assert api(org).delete(f"{API}{card.pk}/").status_code == 400
        other = api(org).post(API, {"name": "Tech", "definition": DEFAULT_SCORECARD}, format="json").json()
        assert api(org).delete(f"{API}{other['id']}/").status_code == 204
        assert Scorecard.all_orgs.get(pk=other["id"]).is_active is False

    def test_preview_counts_colour_changes(self, org, api):
        today = timezone.localdate()
        for i in range(3):
            account = AccountFactory(organization=org, arr=Decimal(1000 * (i + 1)))
            CsmPulse.all_orgs.create(organization=org, account=account, color="yellow", created_at=timezone.now())
        recompute_health(org, as_of=today, latest=True)
        body = api(org).post(f"{API}{default_card(org).pk}/preview/", {"definition": pulse_only()}, format="json")
        assert body.status_code == 200, body.json()
        result = body.json()
        assert result["accounts_changing"] == 3 and result["arr_changing"] == "6000.00"
        assert result["changes"] == [{"from": "yellow", "to": "green", "accounts": 3, "arr": "6000.00"}]
        assert ScorecardVersion.all_orgs.filter(scorecard=default_card(org)).count() == 1  # nothing saved


class TestScorecardEditor:
    def test_admin_only(self, client, org, other_org, alice, bob, charlie):
        url = reverse("admin-scorecards", args=[org.slug])
        client.force_login(bob)
        assert client.get(url).status_code == 403
        client.force_login(charlie)
        assert client.get(url).status_code == 404
        client.force_login(alice)
        html = client.get(url).content.decode()
        assert "Default" in html and 'data-testid="scorecards"' in html
        assert (
            client.get(reverse("admin-scorecard", args=[other_org.slug, default_card(other_org).pk])).status_code == 404
        )
        assert client.get(reverse("admin-scorecard", args=[org.slug, default_card(other_org).pk])).status_code == 404

    def test_preview_then_save_with_note(self, client, org, alice):
        account = AccountFactory(organization=org, arr=Decimal("5000"))
        CsmPulse.all_orgs.create(organization=org, account=account, color="yellow", created_at=timezone.now())
        recompute_health(org, as_of=timezone.localdate(), latest=True)
        card = default_card(org)
        url = reverse("admin-scorecard", args=[org.slug, card.pk])
        client.force_login(alice)
        page = client.get(url).content.decode()
        assert "Adoption" in page and "linear: 0.1 → 0, 0.6 → 100" in page
        form = {"name": card.name, "position": card.position, "definition": json.dumps(pulse_only()),
                "note": "Yellow pulse is fine"}  # fmt: skip
        preview = client.post(url, {**form, "action": "preview"})
        assert preview.status_code == 200
        assert preview.context["preview"]["accounts_changing"] == 1
        assert 'data-testid="preview-changing">1<' in preview.content.decode()
        assert ScorecardVersion.all_orgs.filter(scorecard=card).count() == 1
        saved = client.post(url, {**form, "action": "save"})
        assert saved.status_code == 302
        version = Scorecard.all_orgs.get(pk=card.pk).current_version
        assert (version.number, version.note, version.created_by) == (2, "Yellow pulse is fine", alice)
        history = client.get(url).content.decode()
        assert "Yellow pulse is fine" in history and "v2" in history
        older = client.get(url, {"version": 1})
        assert json.loads(older.context["form"].initial["definition"]) == DEFAULT_SCORECARD

    def test_invalid_definition_shows_paths(self, client, org, alice):
        card = default_card(org)
        url = reverse("admin-scorecard", args=[org.slug, card.pk])
        client.force_login(alice)
        bad = copy.deepcopy(DEFAULT_SCORECARD)
        bad["components"][1]["weight"] = "heavy"
        response = client.post(url, {"name": card.name, "position": 1, "definition": json.dumps(bad), "action": "save"})
        assert response.status_code == 400
        assert "components.1.weight" in response.content.decode()
        assert (
            client.post(url, {"name": card.name, "position": 1, "definition": "{", "action": "save"}).status_code == 400
        )

    def test_create_for_a_segment(self, client, org, alice):
        from accounts.models import Segment

        segment = Segment.all_orgs.get(organization=org, name="Tech touch")
        client.force_login(alice)
        response = client.post(reverse("admin-scorecards", args=[org.slug]), {
            "name": "Tech touch card", "segment": segment.pk, "position": 1, "is_active": "on",
            "definition": json.dumps(pulse_only()), "note": "",
        })  # fmt: skip
        assert response.status_code == 302
        card = Scorecard.all_orgs.get(organization=org, name="Tech touch card")
        assert card.segment == segment and card.current_version.number == 1
