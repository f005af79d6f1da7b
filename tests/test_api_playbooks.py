"""``/api/v1/playbooks/`` (issue 12 §6): CRUD for admins and read for every member, validation naming every
problem by its path, preview (nothing written), firings and effectiveness; the OpenAPI document describes them."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from cs_platform.models import DomainEvent
from playbooks.engine import evaluate_organization
from playbooks.models import Cta, CtaLog, Playbook, PlaybookFiring

from .factories import AccountFactory
from .test_api_roles import client_for, people  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db
API = "/api/v1/playbooks/"

BODY = {
    "name": "Quiet accounts",
    "trigger": "no_touch",
    "trigger_params": {"days": 45},
    "cooldown_days": 30,
    "actions": [
        {"kind": "open_cta", "type": "risk", "reason": "no_touch", "tasks": [{"title": "Call", "due_in_days": 2}]}
    ],
}


def test_admin_creates_and_every_member_reads(org, people, client_for):  # noqa: F811 - fixtures of test_api_roles
    created = client_for("admin").post(API, BODY, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["trigger"], body["created_by"], body["problems"], body["active"]) == (
        "no_touch", people["admin"].email, [], False,
    )  # fmt: skip
    for role in ("leader", "csm", "viewer"):
        client = client_for(role)
        assert client.get(f"{API}{body['id']}/").status_code == 200
        assert client.get(f"{API}{body['id']}/effectiveness/").status_code == 200
        assert client.get(f"{API}{body['id']}/firings/").status_code == 200
        assert client.post(API, {**BODY, "name": role}, format="json").status_code == 403
        assert client.post(f"{API}{body['id']}/preview/").status_code == 403
        assert client.patch(f"{API}{body['id']}/", {"active": True}, format="json").status_code == 403


def test_validation_names_every_problem(org, people, client_for):  # noqa: F811 - fixtures of test_api_roles
    bad = {
        "name": "Bad",
        "trigger": "renewal_due",
        "trigger_params": {"days": "ninety", "colour": "red"},
        "conditions": {"match": "all", "conditions": [{"field": "arr", "op": "gte", "value": "lots"}]},
        "cooldown_days": -1,
        "actions": [{"kind": "open_cta", "type": "nope", "reason": "x"}, {"kind": "notify", "to": "everyone"}],
    }
    response = client_for("admin").post(API, bad, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {
        "trigger_params.days", "trigger_params.colour", "conditions.conditions.0.value", "cooldown_days",
        "actions.0.type", "actions.1.to", "actions.1.message",
    } <= set(errors)  # fmt: skip
    assert not Playbook.all_orgs.exists()
    unknown = client_for("admin").post(API, {**BODY, "trigger": "moon_phase"}, format="json")
    assert unknown.status_code == 400 and "trigger" in unknown.json()["errors"]


def test_patch_is_validated_against_the_stored_trigger(org, people, client_for):  # noqa: F811 - fixtures of test_api_roles
    pk = client_for("admin").post(API, BODY, format="json").json()["id"]
    response = client_for("admin").patch(f"{API}{pk}/", {"trigger_params": {"days": 0}}, format="json")
    assert response.status_code == 400 and "trigger_params.days" in response.json()["errors"]


def test_preview_shows_what_it_would_do_and_does_nothing(org, people, client_for):  # noqa: F811 - fixtures of test_api_roles
    pk = client_for("admin").post(API, BODY, format="json").json()["id"]
    accounts = [AccountFactory(organization=org, owner=people["bob"]) for _ in range(4)]
    with time_machine.travel(timezone.now() + dt.timedelta(days=50), tick=False):
        before = {m: m.all_orgs.count() for m in (Cta, CtaLog, PlaybookFiring, DomainEvent)}
        response = client_for("admin").post(f"{API}{pk}/preview/")
        assert {m: m.all_orgs.count() for m in (Cta, CtaLog, PlaybookFiring, DomainEvent)} == before
    assert response.status_code == 200, response.json()
    data = response.json()
    assert (data["matching"], data["ctas_to_open"], data["event_driven"]) == (4, 4, False)
    assert {a["id"] for a in data["sample"]} == {a.pk for a in accounts}


def test_firings_and_effectiveness(org, people, client_for):  # noqa: F811 - fixtures of test_api_roles
    pk = client_for("admin").post(API, {**BODY, "active": True}, format="json").json()["id"]
    AccountFactory(organization=org, owner=people["bob"])
    with time_machine.travel(timezone.now() + dt.timedelta(days=50), tick=False):
        evaluate_organization(org.pk)
    firings = client_for("viewer").get(f"{API}{pk}/firings/").json()
    assert firings["count"] == 1 and firings["results"][0]["outcome"] == "fired"
    assert client_for("viewer").get(f"{API}{pk}/firings/?outcome=bogus").status_code == 400
    figures = client_for("viewer").get(f"{API}{pk}/effectiveness/").json()
    assert (figures["fired"], figures["suppressed"], figures["completed"]) == (1, 0, 0)
    assert figures["recovery"]["window_days"] == 30
