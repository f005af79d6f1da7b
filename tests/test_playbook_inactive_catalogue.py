"""A CTA type or reason an active playbook uses cannot be deactivated (409 naming the playbooks); a playbook made
invalid anyway can still be switched off; and the engine never opens a CTA of an inactive type (it records a
skipped result), set-based or one by one."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from playbooks import cta_admin, engine
from playbooks.engine import evaluate_organization
from playbooks.models import Cta, CtaType, Playbook, PlaybookFiring

from .factories import AccountFactory
from .test_api_roles import client_for, people  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db
API = "/api/v1/playbooks/"


@pytest.fixture
def catalogue(org):
    kind = cta_admin.add_cta_type(org, "Onboarding")
    return kind, cta_admin.add_cta_reason(kind, "Kickoff late")


@pytest.fixture
def playbook(org, people, client_for, catalogue):  # noqa: F811 - fixtures of test_api_roles
    kind, reason = catalogue
    body = {"name": "Late kickoffs", "trigger": "no_touch", "trigger_params": {"days": 45}, "cooldown_days": 30,
            "actions": [{"kind": "open_cta", "type": kind.key, "reason": reason.key},
                        {"kind": "notify", "to": "owner", "message": "Kick off"}]}  # fmt: skip
    pk = client_for("admin").post(API, body, format="json").json()["id"]
    assert client_for("admin").patch(f"{API}{pk}/", {"active": True}, format="json").status_code == 200
    return Playbook.all_orgs.get(pk=pk)


def test_deactivating_a_type_or_reason_an_active_playbook_uses_is_a_409(org, client_for, catalogue, playbook):  # noqa: F811
    kind, reason = catalogue
    response = client_for("admin").patch(f"/api/v1/cta-types/{kind.pk}/", {"is_active": False}, format="json")
    assert response.status_code == 409, response.content
    assert response["Content-Type"].startswith("application/json")
    assert "Late kickoffs" in response.json()["detail"]
    kind.refresh_from_db()
    assert kind.is_active
    with pytest.raises(cta_admin.CatalogueInUse, match="Late kickoffs"):
        cta_admin.set_active(reason, False)
    # Once the playbook is off, both can be deactivated.
    assert client_for("admin").patch(f"{API}{playbook.pk}/", {"active": False}, format="json").status_code == 200
    cta_admin.set_active(reason, False)
    assert (
        client_for("admin").patch(f"/api/v1/cta-types/{kind.pk}/", {"is_active": False}, format="json").status_code
        == 200
    )


def test_a_playbook_made_invalid_can_be_switched_off_but_not_on(org, client_for, catalogue, playbook):  # noqa: F811
    CtaType.all_orgs.filter(pk=catalogue[0].pk).update(is_active=False)  # as stored before the 409 existed
    off = client_for("admin").patch(f"{API}{playbook.pk}/", {"active": False}, format="json")
    assert off.status_code == 200, off.content
    assert Playbook.all_orgs.get(pk=playbook.pk).active is False
    on = client_for("admin").patch(f"{API}{playbook.pk}/", {"active": True}, format="json")
    assert on.status_code == 400
    assert Playbook.all_orgs.get(pk=playbook.pk).active is False


def test_the_engine_skips_an_open_cta_action_of_an_inactive_type(org, people, catalogue, playbook):  # noqa: F811
    accounts = [AccountFactory(organization=org, owner=people["bob"]) for _ in range(3)]
    CtaType.all_orgs.filter(pk=catalogue[0].pk).update(is_active=False)
    later = timezone.now() + dt.timedelta(days=50)
    with time_machine.travel(later, tick=False):
        evaluate_organization(org.pk)  # set-based
        one = engine.fire(playbook, AccountFactory(organization=org, owner=people["bob"]), "manual-1", reason="test")
    assert not Cta.all_orgs.filter(organization=org).exists()
    firings = list(PlaybookFiring.all_orgs.filter(playbook=playbook))
    assert len(firings) == len(accounts) + 1 and one is not None
    for firing in firings:
        assert firing.results[0] == {"kind": "open_cta", "status": "skipped", "detail": "CTA type inactive"}
        assert firing.results[1]["kind"] == "notify"
