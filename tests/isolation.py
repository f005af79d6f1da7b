"""A reusable tenant-isolation suite that every API resource runs (spec §1: nothing of one organization
is visible, writable, countable or guessable from another).

Add a resource with one line in ``tests/test_api_isolation.py``::

    IsolationCase("ctas", make=lambda o: CtaFactory(account__organization=o),
                  payload=lambda o: {"account": AccountFactory(organization=o).pk, "title": "Call"},
                  foreign={"account": lambda o: AccountFactory(organization=o).pk}),

``test_every_resource_runs_the_isolation_suite`` fails until every ``OrgScopedViewSet`` under
``/api/v1/`` has its case.

``make(org)`` builds one object in ``org``; ``payload(org)`` returns a valid create body whose
related objects live in ``org``; ``foreign`` maps a field (dotted for nested input, e.g. ``"lines.0.product"``)
to a function returning a value that refers to an object of the given organization. The suite runs
with an admin key of organization A against objects of organization B and checks that:

- lists show A's object and never B's;
- retrieve, PATCH, PUT and DELETE of B's object answer 404, exactly like an id that does not exist,
  and leave B's row unchanged;
- ``organization`` in a create body is 400 "Unknown field." and nothing is created anywhere;
- a create naming a related object of B is a 400 on that field, and nothing is created;
- ``PUT <list>/external/<value>/`` with B's external id creates a new row in A (201, then 200) and
  leaves B's row untouched; resources without an external id have no such route.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from django.db import models
from django.urls import resolve

API = "/api/v1"


@dataclass(frozen=True)
class IsolationCase:
    resource: str
    make: Callable[[Any], models.Model]
    payload: Callable[[Any], dict[str, Any]]
    foreign: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    patch: Mapping[str, Any] | None = None
    #: A resource the API only reads (``usage-metrics``): every write answers 405, for any id, and changes nothing.
    read_only: bool = False
    create_status: int = 201  # 202 for resources whose create only queues work (imports)
    #: The model a create adds a row to, when not the listed one (``users``: a POST invites, see invitations).
    creates: type[models.Model] | None = None
    #: For resources that are each member's own (``notifications``): the user of ``org`` the admin key is
    #: bound to, so that ``make(org)`` can build that user's object (``None``: a key bound to no user).
    key_user: Callable[[Any], Any] | None = None

    def __str__(self) -> str:
        return self.resource

    @property
    def view(self) -> Any:
        return resolve(f"{API}/{self.resource}/").func.cls

    @property
    def model(self) -> type[models.Model]:
        return self.view.queryset.model

    @property
    def upsert_field(self) -> str | None:
        return self.view.upsert_field

    def url(self, pk: Any = None) -> str:
        return f"{API}/{self.resource}/" if pk is None else f"{API}/{self.resource}/{pk}/"

    def count(self, org: Any) -> int:
        return (self.creates or self.model).all_orgs.filter(organization=org).count()

    def snapshot(self, obj: models.Model) -> dict[str, Any]:
        return self.model.all_orgs.filter(pk=obj.pk).values().get()

    def change(self, org: Any) -> dict[str, Any]:
        if self.patch is not None:
            return dict(self.patch)
        body = self.payload(org)
        name, value = next((k, v) for k, v in body.items() if isinstance(v, str))
        return {name: value + "-changed"}


def set_path(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set ``lines.0.product`` style paths inside a request body."""
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return body


def ids_of(response: Any) -> set[Any]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


class IsolationSuite:
    """Inherit and set ``cases``; every test runs once per case, with an admin key of ``org``."""

    cases: ClassVar[Sequence[IsolationCase]] = ()

    def pytest_generate_tests(self, metafunc: Any) -> None:
        if "case" in metafunc.fixturenames:
            metafunc.parametrize("case", list(self.cases), ids=[c.resource for c in self.cases])

    @pytest.fixture
    def client_a(self, case, org, api):
        return api(org, "admin", case.key_user(org) if case.key_user else None)

    def test_create_payload_is_valid(self, case, org, client_a):
        if case.read_only:
            before = case.count(org)
            assert client_a.post(case.url(), case.payload(org), format="json").status_code == 405
            assert case.count(org) == before
            return
        # Guards the suite itself: the 400s below must come from isolation, not from a broken payload.
        before = case.count(org)
        response = client_a.post(case.url(), case.payload(org), format="json")
        assert response.status_code == case.create_status, response.json()
        assert case.count(org) == before + 1

    def test_list_shows_only_own_rows(self, case, org, other_org, client_a):
        mine, theirs = case.make(org), case.make(other_org)
        ids = ids_of(client_a.get(case.url(), {"page_size": 500}))
        assert mine.pk in ids
        assert theirs.pk not in ids

    def test_foreign_object_is_indistinguishable_from_a_missing_one(self, case, org, other_org, client_a):
        theirs = case.make(other_org)
        missing = case.model.all_orgs.order_by("-pk").values_list("pk", flat=True).first() + 10_000
        foreign, absent = client_a.get(case.url(theirs.pk)), client_a.get(case.url(missing))
        assert foreign.status_code == absent.status_code == 404
        assert foreign.json() == absent.json()

    def test_writes_to_foreign_object_are_404_and_change_nothing(self, case, org, other_org, client_a):
        theirs = case.make(other_org)
        before = case.snapshot(theirs)
        # A read-only resource refuses writes with 405 whatever the id: nothing to tell apart either.
        code = 405 if case.read_only else 404
        assert client_a.patch(case.url(theirs.pk), case.change(org), format="json").status_code == code
        assert client_a.put(case.url(theirs.pk), case.payload(org), format="json").status_code == code
        assert client_a.delete(case.url(theirs.pk)).status_code == code
        assert case.snapshot(theirs) == before

    def test_organization_in_body_is_an_unknown_field(self, case, org, other_org, client_a):
        body = case.payload(org)
        mine_before, theirs_before = case.count(org), case.count(other_org)
        response = client_a.post(case.url(), {**body, "organization": other_org.pk}, format="json")
        if case.read_only:
            assert response.status_code == 405
            assert (case.count(org), case.count(other_org)) == (mine_before, theirs_before)
            return
        assert response.status_code == 400
        assert response.json()["errors"]["organization"] == ["Unknown field."]
        assert (case.count(org), case.count(other_org)) == (mine_before, theirs_before)

    def test_related_object_of_another_organization_is_a_field_error(self, case, org, other_org, client_a):
        if case.read_only:
            pytest.skip(f"{case.resource} takes no writes")
        if not case.foreign:
            pytest.skip(f"{case.resource} refers to no other object")
        for path, make_ref in case.foreign.items():
            body = set_path(case.payload(org), path, make_ref(other_org))
            mine_before, theirs_before = case.count(org), case.count(other_org)
            response = client_a.post(case.url(), body, format="json")
            assert response.status_code == 400, (path, response.json())
            assert path in response.json()["errors"], (path, response.json())
            assert (case.count(org), case.count(other_org)) == (mine_before, theirs_before)

    def test_upsert_never_matches_another_organization(self, case, org, other_org, client_a):
        if case.upsert_field is None:
            # No external id: the route does not exist at all.
            response = client_a.put(f"{case.url()}external/anything/", case.payload(org), format="json")
            assert response.status_code == 404, response.content
            return
        theirs = case.make(other_org)
        value = getattr(theirs, case.upsert_field)
        assert value
        before = case.snapshot(theirs)
        body = {k: v for k, v in case.payload(org).items() if k != case.upsert_field}
        url = f"{case.url()}external/{value}/"
        created = client_a.put(url, body, format="json")
        assert created.status_code == 201, created.json()
        assert created.json()["id"] != theirs.pk
        row = case.model.all_orgs.get(pk=created.json()["id"])
        assert (row.organization_id, getattr(row, case.upsert_field)) == (org.pk, value)
        updated = client_a.put(url, case.change(org), format="json")
        assert updated.status_code == 200, updated.json()
        assert updated.json()["id"] == row.pk
        assert case.snapshot(theirs) == before
        assert case.model.all_orgs.filter(**{case.upsert_field: value}).count() == 2
