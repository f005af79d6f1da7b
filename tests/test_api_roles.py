"""Who may write what through the API (spec §1), as one table: role × resource × book × operation.

The organization: alice (admin), lena (leader, manages team North), bob (csm in North), dave (csm in
team South, managed by another leader), vic (viewer). Keys are bound to those users. "own" objects
hang off an account in bob's book (bob's own, and in lena's team); "other" objects off an account in
dave's book.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Account, ApiKey, Membership

from .factories import (
    AccountFactory,
    ActivityFactory,
    ContactFactory,
    ContractFactory,
    ContractLineFactory,
    MembershipFactory,
    OrganizationFactory,
    ProductFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
API = "/api/v1"


@pytest.fixture
def people(org, make_member) -> dict[str, Any]:
    alice = make_member(org, "admin").user
    lena = make_member(org, "leader").user
    bob = make_member(org, "csm").user
    dave = make_member(org, "csm").user
    vic = make_member(org, "viewer").user
    team = TeamFactory(organization=org, name="North", manager=lena)
    Membership.all_orgs.filter(organization=org, user=bob).update(team=team)
    # dave sits in another leader's team: lena may not write his book
    south = TeamFactory(organization=org, name="South", manager=make_member(org, "leader").user)
    Membership.all_orgs.filter(organization=org, user=dave).update(team=south)
    return {"admin": alice, "leader": lena, "csm": bob, "viewer": vic, "bob": bob, "dave": dave}


@pytest.fixture
def client_for(org, people, api):
    def make(role: str) -> APIClient:
        return api(org, role, people[role])

    return make


@dataclass(frozen=True)
class Resource:
    name: str
    make: Any  # (org, owner) -> object
    payload: Any  # (org, owner) -> create body
    patch: dict[str, Any]
    owner_scoped: bool = True
    create_status: int = 201  # users: 202, a POST invites (the member joins when they accept)


RESOURCES = [
    Resource("accounts", lambda o, u: AccountFactory(organization=o, owner=u),
             lambda o, u: {"name": "New Co", "owner": u.email}, {"name": "Renamed"}),
    Resource("contacts", lambda o, u: ContactFactory(account__organization=o, account__owner=u),
             lambda o, u: {"account": AccountFactory(organization=o, owner=u).pk, "name": "Jo"}, {"title": "CTO"}),
    Resource("contracts", lambda o, u: ContractFactory(account__organization=o, account__owner=u),
             lambda o, u: {"account": AccountFactory(organization=o, owner=u).pk, "number": "CT-NEW",
                           "start_date": "2026-01-01", "end_date": "2026-12-31"}, {"seats": 40}),
    Resource("activities", lambda o, u: ActivityFactory(account__organization=o, account__owner=u),
             lambda o, u: {"account": AccountFactory(organization=o, owner=u).pk, "type": "note",
                           "occurred_at": "2026-11-02T09:00:00Z"}, {"summary": "Edited"}),
    Resource("products", lambda o, u: ProductFactory(organization=o), lambda o, u: {"sku": "N-1", "name": "N"},
             {"name": "Renamed"}, owner_scoped=False),
    Resource("teams", lambda o, u: TeamFactory(organization=o), lambda o, u: {"name": "East"},
             {"name": "West"}, owner_scoped=False),
    Resource("playbooks", lambda o, u: _playbook(o), lambda o, u: _playbook_body(o), {"name": "Renamed"},
             owner_scoped=False),
    Resource("users", lambda o, u: MembershipFactory(organization=o), lambda o, u: {"email": "x@example.com",
             "role": "viewer"}, {"role": "viewer"}, owner_scoped=False, create_status=202),
    Resource("surveys", lambda o, u: _survey(o), lambda o, u: {"name": f"S{_n()}", "kind": "csat",
             "question": "Happy?", "email_subject": "Hi", "email_body": "Hello"}, {"question": "Happier?"},
             owner_scoped=False),
    Resource("survey-responses", lambda o, u: _response(o, AccountFactory(organization=o, owner=u)),
             lambda o, u: {"account": AccountFactory(organization=o, owner=u).pk, "kind": "nps", "score": 9,
                           "responded_at": "2026-11-02T09:00:00Z"}, {"comment": "Edited"}),
    Resource("integrations", lambda o, u: _connection(o), lambda o, u: {"kind": "hubspot", "name": f"HS {_n()}",
             "credentials": {"access_token": "pat-x"}}, {"name": "Renamed"}, owner_scoped=False),
    Resource("integration-syncs", lambda o, u: _connection(o).syncs.get(object_name="companies"),
             lambda o, u: {"connection": _bare_connection(o).pk, "object_name": "companies"},
             {"interval_minutes": 30}, owner_scoped=False),
    Resource("email-templates", lambda o, u: _email_template(o), lambda o, u: {"name": "Check-in", "subject": "Hi",
             "body": "Hello {{ contact.first_name }}"}, {"subject": "Changed"}, owner_scoped=False),
    Resource("chat-channels", lambda o, u: _chat_channel(o), lambda o, u: {"kind": "slack", "name": f"#c{_n()}",
             "webhook_url": "https://hooks.example.com/services/T/B/x"}, {"name": "#renamed"}, owner_scoped=False),
    Resource("email-captures", lambda o, u: _email_capture(o), lambda o, u: {"never_capture_domains": ["acme.test"]},
             {"enabled": False}, owner_scoped=False),
]  # fmt: skip


def _email_capture(org: Any) -> Any:
    from integrations.email_capture import ensure_capture

    return ensure_capture(org)


def _chat_channel(org: Any) -> Any:
    from playbooks.models import ChatChannel

    return ChatChannel.all_orgs.create(
        organization=org, kind="teams", name=f"C{ChatChannel.all_orgs.count()}", webhook_url="https://h.example/w"
    )


def _connection(org: Any) -> Any:
    from integrations.models import Connection
    from integrations.services import create_connection

    name = f"HubSpot {Connection.all_orgs.count() + 1}"
    return create_connection(org, kind="hubspot", name=name, credentials={"access_token": "pat-x"})


def _bare_connection(org: Any) -> Any:
    made = _connection(org)
    made.syncs.all().delete()
    return made


def _email_template(org: Any) -> Any:
    from playbooks.models import EmailTemplate

    return EmailTemplate.all_orgs.create(
        organization=org, name=f"T{EmailTemplate.all_orgs.count()}", subject="Hi", body="Hello"
    )


def _n() -> int:
    from feedback.models import Survey

    return Survey.all_orgs.count() + 1


def _survey(org: Any) -> Any:
    from .survey_factories import make_survey

    return make_survey(org)


def _response(org: Any, account: Any) -> Any:
    from feedback.models import SurveyResponse

    return SurveyResponse.all_orgs.create(organization=org, account=account, kind="nps", score=5,
                                          responded_at="2026-11-01T09:00:00Z")  # fmt: skip


def _playbook_body(org: Any) -> dict[str, Any]:
    return {"name": "Red accounts", "trigger": "health_color", "trigger_params": {"colors": ["red"]},
            "actions": [{"kind": "open_cta", "type": "risk", "reason": "health_red"}]}  # fmt: skip


def _playbook(org: Any) -> Any:
    from playbooks.models import Playbook

    return Playbook.all_orgs.create(
        organization=org, **{**_playbook_body(org), "name": f"P{Playbook.all_orgs.count()}"}
    )


# May <role> write an object in <book>?  "own" = bob's book (lena's team), "other" = dave's book.
ALLOWED = {
    ("admin", "own"): True, ("admin", "other"): True,
    ("leader", "own"): True, ("leader", "other"): False,
    ("csm", "own"): True, ("csm", "other"): False,
    ("viewer", "own"): False, ("viewer", "other"): False,
}  # fmt: skip
UPSERTABLE = {"accounts", "contacts", "contracts", "products", "survey-responses"}
ADMIN_ONLY = {"admin": True, "leader": False, "csm": False, "viewer": False}

CASES = [
    pytest.param(resource, role, book, id=f"{resource.name}-{role}-{book}")
    for resource in RESOURCES
    for role in ("admin", "leader", "csm", "viewer")
    for book in (("own", "other") if resource.owner_scoped else ("own",))
]


def expected(resource: Resource, role: str, book: str) -> bool:
    return ALLOWED[(role, book)] if resource.owner_scoped else ADMIN_ONLY[role]


@pytest.mark.parametrize(("resource", "role", "book"), CASES)
def test_write_matrix(resource, role, book, org, people, client_for):
    owner = people["bob" if book == "own" else "dave"]
    client = client_for(role)
    allowed = expected(resource, role, book)
    url = f"{API}/{resource.name}/"

    created = client.post(url, resource.payload(org, owner), format="json")
    assert created.status_code == (resource.create_status if allowed else 403), created.json()

    obj = resource.make(org, owner)
    updated = client.patch(f"{url}{obj.pk}/", resource.patch, format="json")
    assert updated.status_code == (200 if allowed else 403), updated.json()

    replaced_body = {**client.get(f"{url}{obj.pk}/").json(), **resource.patch}
    replaced_body = {k: v for k, v in replaced_body.items() if k not in ("id",)}
    replaced = client.put(f"{url}{obj.pk}/", replaced_body, format="json")
    assert replaced.status_code == (200 if allowed else 403), replaced.json()

    deleted = client.delete(f"{url}{obj.pk}/")
    assert deleted.status_code == (204 if allowed else 403)
    assert type(obj).all_orgs.filter(pk=obj.pk).exists() is not allowed


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.name)
def test_everyone_reads(resource, org, people, client_for):
    obj = resource.make(org, people["dave"])
    for role in ("admin", "leader", "csm", "viewer"):
        response = client_for(role).get(f"{API}/{resource.name}/{obj.pk}/")
        assert response.status_code == 200, (role, response.json())


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.name)
def test_viewer_key_without_user_cannot_write_anything(resource, org, people, api):
    client = api(org, "viewer")
    obj = resource.make(org, people["bob"])
    url = f"{API}/{resource.name}/"
    assert client.post(url, resource.payload(org, people["bob"]), format="json").status_code == 403
    assert client.patch(f"{url}{obj.pk}/", resource.patch, format="json").status_code == 403
    assert client.put(f"{url}{obj.pk}/", resource.payload(org, people["bob"]), format="json").status_code == 403
    assert client.delete(f"{url}{obj.pk}/").status_code == 403
    upsert = client.put(f"{url}external/X-1/", resource.payload(org, people["bob"]), format="json")
    # Accounts, contacts, contracts and products upsert by external id/SKU/number; the others have no route.
    assert upsert.status_code == (403 if resource.name in UPSERTABLE else 404), upsert.content
    assert type(obj).all_orgs.filter(pk=obj.pk).exists()


def test_csm_account_goes_to_their_book_and_they_cannot_give_it_away(org, people, client_for):
    client = client_for("csm")
    created = client.post(f"{API}/accounts/", {"name": "Mine"}, format="json")
    assert created.status_code == 201
    assert created.json()["owner"] == people["bob"].email
    account_id = created.json()["id"]
    moved = client.patch(f"{API}/accounts/{account_id}/", {"owner": people["dave"].email}, format="json")
    assert moved.status_code == 403
    unowned = client.patch(f"{API}/accounts/{account_id}/", {"owner": None}, format="json")
    assert unowned.status_code == 403
    assert Account.all_orgs.get(pk=account_id).owner == people["bob"]


def test_csm_upsert_creates_in_own_book_and_cannot_upsert_anothers_account(org, people, client_for):
    client = client_for("csm")
    created = client.put(f"{API}/accounts/external/CRM-1/", {"name": "Via CRM"}, format="json")
    assert created.status_code == 201
    assert created.json()["owner"] == people["bob"].email
    AccountFactory(organization=org, owner=people["dave"], external_id="CRM-2", name="Dave's")
    refused = client.put(f"{API}/accounts/external/CRM-2/", {"name": "Taken"}, format="json")
    assert refused.status_code == 403
    assert Account.all_orgs.get(organization=org, external_id="CRM-2").name == "Dave's"


def test_leader_assigns_within_team_only(org, people, client_for):
    client = client_for("leader")
    account = AccountFactory(organization=org, owner=people["bob"])
    in_team = {"name": "T", "owner": people["bob"].email}
    assert client.post(f"{API}/accounts/", in_team, format="json").status_code == 201
    assert client.post(f"{API}/accounts/", {"name": "U"}, format="json").status_code == 201  # unowned: team pool
    moved = client.patch(f"{API}/accounts/{account.pk}/", {"owner": people["dave"].email}, format="json")
    assert moved.status_code == 403
    mine = client.patch(f"{API}/accounts/{account.pk}/", {"owner": people["leader"].email}, format="json")
    assert mine.status_code == 200


def test_csm_cannot_move_a_contact_onto_anothers_account(org, people, client_for):
    contact = ContactFactory(account__organization=org, account__owner=people["bob"])
    theirs = AccountFactory(organization=org, owner=people["dave"])
    response = client_for("csm").patch(f"{API}/contacts/{contact.pk}/", {"account": theirs.pk}, format="json")
    assert response.status_code == 403
    contact.refresh_from_db()
    assert contact.account.owner == people["bob"]


@pytest.mark.parametrize("role", ["csm", "leader"])
def test_key_without_user_has_no_book(role, org, people, api):
    client = api(org, role)
    assert client.post(f"{API}/accounts/", {"name": "Nobody's"}, format="json").status_code == 403
    unowned = AccountFactory(organization=org, owner=None)
    assert client.patch(f"{API}/accounts/{unowned.pk}/", {"name": "x"}, format="json").status_code == 403
    contact_body = {"account": unowned.pk, "name": "Jo"}
    assert client.post(f"{API}/contacts/", contact_body, format="json").status_code == 403
    assert client.get(f"{API}/accounts/", {"owner": "me"}).json()["count"] == 0
    assert not Account.all_orgs.filter(name="Nobody's").exists()


def test_key_acts_no_higher_than_its_user_and_dies_with_the_membership(org, people, api):
    bob = people["bob"]
    client = api(org, "admin", bob)  # an admin key bound to a csm acts as a csm
    assert client.post(f"{API}/products/", {"sku": "S", "name": "S"}, format="json").status_code == 403
    assert client.get(f"{API}/me/").json()["role"] == "csm"
    Membership.all_orgs.filter(organization=org, user=bob).delete()
    assert client.get(f"{API}/accounts/").status_code == 401


def test_key_named_for_another_organization_is_refused(org, other_org, api):
    client = api(org, "admin")
    assert client.get(f"{API}/accounts/", HTTP_X_ORGANIZATION="acme").status_code == 200
    # Any other slug, existing or not, is "not found": a key acts in no other organization.
    foreign = client.get(f"{API}/accounts/", HTTP_X_ORGANIZATION="globex")
    absent = client.get(f"{API}/accounts/", HTTP_X_ORGANIZATION="no-such-org")
    assert foreign.status_code == absent.status_code == 404
    assert foreign.json() == absent.json()
    assert foreign.json()["detail"].startswith("Organization not found.")
    # A value that cannot be a slug is refused as input, whoever sends it.
    for bad in ("", "acme corp", "acme/", "ac\u00e9me", "a" * 61):
        response = client.get(f"{API}/accounts/", HTTP_X_ORGANIZATION=bad)
        assert response.status_code == 400, bad
        assert "organization" in response.json()["errors"]


def test_revoked_key_is_401(org, api_key):
    raw = api_key(org, "admin")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(f"{API}/accounts/").status_code == 200
    ApiKey.all_orgs.get(organization=org).revoke()
    response = client.get(f"{API}/accounts/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or revoked API key.", "errors": {}}


class TestSession:
    """A browser session names its organization; membership decides, never a remembered choice."""

    @pytest.fixture
    def two_org_user(self, org, other_org, make_member):
        user = make_member(org, "csm").user
        MembershipFactory(organization=other_org, user=user, role="viewer")
        return user

    @pytest.fixture
    def client(self, two_org_user):
        client = APIClient()
        client.force_login(two_org_user)
        return client

    def test_must_name_the_organization(self, client):
        response = client.get(f"{API}/accounts/")
        assert response.status_code == 400
        assert "organization" in response.json()["errors"]

    def test_header_picks_the_organization_and_its_role(self, client, org, other_org, two_org_user):
        mine = AccountFactory(organization=org)
        AccountFactory(organization=other_org)
        response = client.get(f"{API}/accounts/", HTTP_X_ORGANIZATION="acme")
        assert [row["id"] for row in response.json()["results"]] == [mine.pk]
        assert client.get(f"{API}/me/", HTTP_X_ORGANIZATION="globex").json()["role"] == "viewer"
        # viewer in globex: no writes there, whatever the role elsewhere
        denied = client.post(f"{API}/accounts/", {"name": "x"}, format="json", HTTP_X_ORGANIZATION="globex")
        assert denied.status_code == 403
        created = client.post(f"{API}/accounts/?org=acme", {"name": "Mine"}, format="json")
        assert created.status_code == 201
        assert created.json()["owner"] == two_org_user.email

    def test_unknown_and_foreign_slugs_answer_alike(self, client, db):
        OrganizationFactory(slug="initech")
        foreign = client.get(f"{API}/accounts/", HTTP_X_ORGANIZATION="initech")
        absent = client.get(f"{API}/accounts/", HTTP_X_ORGANIZATION="no-such-org")
        assert foreign.status_code == absent.status_code == 404
        assert foreign.json() == absent.json()

    def test_single_membership_needs_no_header(self, org, make_member):
        client = APIClient()
        client.force_login(make_member(org, "viewer").user)
        assert client.get(f"{API}/accounts/").status_code == 200

    def test_user_without_organization_is_refused(self, db):
        client = APIClient()
        client.force_login(UserFactory())
        assert client.get(f"{API}/accounts/").status_code == 403

    def test_anonymous_is_401_with_the_bearer_challenge(self, db):
        response = APIClient().get(f"{API}/accounts/")
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'
        assert response.json()["detail"] == "Authentication credentials were not provided."


def test_product_in_use_cannot_be_deleted(org, people, client_for):
    line = ContractLineFactory(contract__account__organization=org)
    response = client_for("admin").delete(f"{API}/products/{line.product_id}/")
    assert response.status_code == 409
    assert response.json()["errors"] == {}
    assert type(line.product).all_orgs.filter(pk=line.product_id).exists()


def test_last_admin_cannot_be_removed_or_demoted(org, people, api):
    client = api(org, "admin")  # a key without a user: not "yourself"
    alice = Membership.all_orgs.get(organization=org, user=people["admin"])
    demote = client.patch(f"{API}/users/{alice.pk}/", {"role": "csm"}, format="json")
    assert demote.status_code == 400 and "role" in demote.json()["errors"]
    assert client.delete(f"{API}/users/{alice.pk}/").status_code == 400
    second = MembershipFactory(organization=org, role="admin")
    assert client.delete(f"{API}/users/{second.pk}/").status_code == 204
    assert Membership.all_orgs.filter(pk=alice.pk, role="admin").exists()


def test_browsable_api_renders_for_a_member(org, people):
    client = APIClient()
    client.force_login(people["viewer"])
    account = AccountFactory(organization=org, owner=people["csm"], name="Browsable Co")
    response = client.get(f"{API}/accounts/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert account.name.encode() in response.content


def unsafe_api_endpoints() -> list[tuple[str, str]]:
    """Every write route under /api/v1/, found from the URLconf (new resources are covered automatically)."""
    from drf_spectacular.generators import EndpointEnumerator

    return sorted(
        {
            (path, method)
            for path, _regex, method, _view in EndpointEnumerator().get_api_endpoints()
            if path.startswith(f"{API}/") and method in ("POST", "PUT", "PATCH", "DELETE")
        }
    )


def _handler(path: str, method: str):
    """The viewset method that serves ``method`` on ``path`` (None for plain views)."""
    from drf_spectacular.generators import EndpointEnumerator

    for endpoint_path, _regex, endpoint_method, view in EndpointEnumerator().get_api_endpoints():
        if (endpoint_path, endpoint_method) == (path, method):
            actions = getattr(view, "actions", None) or {}
            cls = getattr(view, "cls", None)
            name = actions.get(method.lower())
            return getattr(cls, name, None) if cls is not None and name else None
    return None


def test_viewer_key_is_refused_on_every_write_route(org, people, api):
    endpoints = unsafe_api_endpoints()
    assert len(endpoints) >= 7 * 4  # sanity: the enumerator found the resources
    account = AccountFactory(organization=org, owner=people["bob"])
    for client in (api(org, "viewer"), api(org, "viewer", people["viewer"])):
        for path, method in endpoints:
            url = re.sub(r"\{[^}]+\}", lambda m: "X-1" if "external" in m.group(0) else str(account.pk), path)
            response = client.generic(method, url, "{}", content_type="application/json")
            if "{" not in path and getattr(_handler(path, method), "refused", False):
                # A list URL's method the API refuses for everyone (left out of the OpenAPI document): 405 to
                # any role, before the key is even looked at (an object's refused method is looked up first).
                assert response.status_code == 405, (method, url, response.status_code)
                continue
            assert response.status_code == 403, (method, url, response.status_code)
    assert Account.all_orgs.filter(organization=org).count() == 1


# --- The work queue: CTAs and tasks follow the same table; notifications are each member's own ------------


def _cta_for(org: Any, owner: Any) -> Any:
    from playbooks.ctas import open_or_update_cta

    account = AccountFactory(organization=org, owner=owner)
    return open_or_update_cta(account=account, type="risk", reason="health_red")[0]


def _risk_reason(org: Any) -> int:
    from playbooks.models import CtaReason

    return CtaReason.objects.for_org(org).get(type__key="risk", key="health_red").pk


WORK_RESOURCES = {
    "ctas": (
        _cta_for,
        lambda o, u: {"account": AccountFactory(organization=o, owner=u).pk, "type": "risk", "reason": _risk_reason(o)},
        {"title": "Renamed"},
    ),
    "tasks": (
        lambda o, u: _cta_for(o, u).tasks.create(organization=o, title="Call"),
        lambda o, u: {"cta": _cta_for(o, u).pk, "title": "Send the deck"},
        {"done": True},
    ),
}
WORK_CASES = [
    pytest.param(name, role, book, id=f"{name}-{role}-{book}")
    for name in WORK_RESOURCES
    for role in ("admin", "leader", "csm", "viewer")
    for book in ("own", "other")
]


@pytest.mark.parametrize(("name", "role", "book"), WORK_CASES)
def test_work_queue_write_matrix(name, role, book, org, people, client_for):
    """Create, PATCH and the CTA actions as the accounts table says; PUT and DELETE are 405 for whoever may
    write (a CTA is closed, never erased) and 403 for the others."""
    make, payload, patch = WORK_RESOURCES[name]
    owner = people["bob" if book == "own" else "dave"]
    client, allowed = client_for(role), ALLOWED[(role, book)]
    url = f"{API}/{name}/"
    created = client.post(url, payload(org, owner), format="json")
    assert created.status_code == (201 if allowed else 403), created.json()
    obj = make(org, owner)
    assert client.get(f"{url}{obj.pk}/").status_code == 200  # everyone reads
    updated = client.patch(f"{url}{obj.pk}/", patch, format="json")
    assert updated.status_code == (200 if allowed else 403), updated.json()
    assert client.put(f"{url}{obj.pk}/", payload(org, owner), format="json").status_code == (405 if allowed else 403)
    assert client.delete(f"{url}{obj.pk}/").status_code == (405 if allowed else 403)
    assert type(obj).all_orgs.filter(pk=obj.pk).exists()
    if name == "ctas":
        import datetime as dt

        until = (dt.date.today() + dt.timedelta(days=3)).isoformat()
        snoozed = client.post(f"{url}{obj.pk}/snooze/", {"until": until, "reason": "other"}, format="json")
        assert snoozed.status_code == (200 if allowed else 403), snoozed.json()
        done = client.post(f"{url}{obj.pk}/complete/", {"outcome": "resolved"}, format="json")
        assert done.status_code == (200 if allowed else 403), done.json()
        obj.refresh_from_db()
        assert obj.status == ("completed" if allowed else "open")


def test_a_task_assigned_to_a_csm_is_theirs_to_tick_off(org, people, client_for):
    task = _cta_for(org, people["dave"]).tasks.create(organization=org, title="Help", assignee=people["bob"])
    response = client_for("csm").patch(f"{API}/tasks/{task.pk}/", {"done": True}, format="json")
    assert response.status_code == 200 and response.json()["done"] is True
    # ...but not the CTA itself, nor another title.
    assert client_for("csm").post(f"{API}/ctas/{task.cta_id}/close/", {"reason": "x"}, format="json").status_code == 403


@pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
def test_notifications_are_each_members_own(role, org, people, client_for):
    from playbooks.models import Notification

    mine = Notification.all_orgs.create(organization=org, user=people[role], message="For me")
    theirs = Notification.all_orgs.create(organization=org, user=people["dave"], message="For Dave")
    client = client_for(role)
    assert [n["id"] for n in client.get(f"{API}/notifications/").json()["results"]] == [mine.pk]
    assert client.get(f"{API}/notifications/{theirs.pk}/").status_code == 404
    read = client.post(f"{API}/notifications/{mine.pk}/read/")
    # Viewers only read (spec §1); the others mark their own notifications read.
    assert read.status_code == (403 if role == "viewer" else 200)
    if role != "viewer":
        assert read.json() == {"marked": 1, "unread": 0}
        assert client.post(f"{API}/notifications/{theirs.pk}/read/").status_code == 404
    assert Notification.all_orgs.get(pk=theirs.pk).read_at is None


# --- Feature requests: CSMs create and link their book; admins and leaders decide -----------------------

FR_CAN_CREATE = {"admin": True, "leader": True, "csm": True, "viewer": False}
FR_CAN_MANAGE = {"admin": True, "leader": True, "csm": False, "viewer": False}


def _feature_request(org: Any) -> Any:
    from feedback.requests import create_request

    return create_request(org, title="Offline mode")


@pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
@pytest.mark.parametrize("book", ["own", "other"])
def test_feature_request_write_matrix(role, book, org, people, client_for):
    """Create: every role but viewer. Edit, status, merge, delete: admins and leaders. Link an account: whoever
    may write that account (the accounts table)."""
    client = client_for(role)
    url = f"{API}/feature-requests/"
    created = client.post(url, {"title": "SSO", "type": "feature"}, format="json")
    assert created.status_code == (201 if FR_CAN_CREATE[role] else 403), created.json()
    fr, other = _feature_request(org), _feature_request(org)
    assert client.get(f"{url}{fr.pk}/").status_code == 200
    manage = 200 if FR_CAN_MANAGE[role] else 403
    assert client.patch(f"{url}{fr.pk}/", {"title": "Renamed"}, format="json").status_code == manage
    assert client.post(f"{url}{fr.pk}/status/", {"status": "planned"}, format="json").status_code == manage
    account = AccountFactory(organization=org, owner=people["bob" if book == "own" else "dave"])
    linked = client.post(f"{url}{fr.pk}/links/", {"account": account.pk}, format="json")
    assert linked.status_code == (201 if ALLOWED[(role, book)] else 403), linked.json()
    assert client.post(f"{url}{fr.pk}/merge/", {"into": other.pk}, format="json").status_code == manage
    assert client.delete(f"{url}{other.pk}/").status_code == (204 if FR_CAN_MANAGE[role] else 403)


@pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
def test_cta_types_admins_write_everyone_reads_nobody_deletes(role, org, people, client_for):
    from playbooks.cta_admin import add_cta_type

    client, allowed = client_for(role), role == "admin"
    created = client.post(f"{API}/cta-types/", {"label": f"Partner {role}"}, format="json")
    assert created.status_code == (201 if allowed else 403), created.json()
    custom = add_cta_type(org, f"Custom {role}")
    assert client.get(f"{API}/cta-types/{custom.pk}/").status_code == 200
    updated = client.patch(f"{API}/cta-types/{custom.pk}/", {"label": "Renamed", "is_active": False}, format="json")
    assert updated.status_code == (200 if allowed else 403), updated.json()
    body = {"label": "Again", "is_active": True, "position": 3}
    assert client.put(f"{API}/cta-types/{custom.pk}/", body, format="json").status_code == (200 if allowed else 403)
    # Never deleted (CTAs point at their type), whoever asks.
    assert client.delete(f"{API}/cta-types/{custom.pk}/").status_code in ((405,) if allowed else (403, 405))
    custom.refresh_from_db()
    assert custom.pk and (custom.label == "Again") is allowed


@pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
def test_scorecard_drafts_admins_write_everyone_reads(role, org, people, client_for):
    """Scorecard versions follow the scorecards' roles: every member reads, only admins create, change,
    preview, publish and roll back."""
    from health import drafts
    from health.models import Scorecard

    card = Scorecard.all_orgs.get(organization=org, is_default=True)
    definition = card.current_version.definition
    draft = drafts.create_draft(card, definition, user=people["admin"])
    client = client_for(role)
    allowed = role == "admin"
    base = f"{API}/scorecards/{card.pk}/versions/"
    assert client.get(base).status_code == 200
    assert client.get(f"{base}{draft.number}/").status_code == 200
    assert client.get(f"{base}{draft.number}/diff/").status_code == 200
    assert client.patch(f"{base}{draft.number}/", {"note": "n"}, format="json").status_code == (200 if allowed else 403)
    assert client.post(base, {"definition": definition}, format="json").status_code == (409 if allowed else 403)
    assert client.post(f"{base}{draft.number}/preview/").status_code == (200 if allowed else 403)
    published = client.post(f"{base}{draft.number}/publish/", {"note": "go"}, format="json")
    assert published.status_code == (200 if allowed else 403)
    rolled = client.post(f"{API}/scorecards/{card.pk}/rollback/", {"note": "back"}, format="json")
    assert rolled.status_code == (201 if allowed else 403)


@pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
def test_audit_log_is_for_admins_only(role, org, people, client_for):
    from cs_platform.audit import record_audit

    record_audit(org.pk, "scorecard.published", subject_type="scorecard", subject_id=1, actor=people["admin"])
    response = client_for(role).get(f"{API}/audit-log/")
    assert response.status_code == (200 if role == "admin" else 403)
    assert client_for(role).get(f"{API}/audit-log/?format=csv").status_code == (200 if role == "admin" else 403)
