"""The accounts endpoint as a client sees it: filters, ordering, pages, errors, limits, upsert, ARR."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.models import Account

from .factories import AccountFactory, ContractLineFactory, MembershipFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/accounts/"


def names(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [row["name"] for row in response.json()["results"]]


@pytest.fixture
def book(org, bob, make_member):
    """Five accounts with distinct attributes; bob owns two."""
    other = make_member(org, "csm").user
    today = dt.date.today()
    return {
        "alpha": AccountFactory(organization=org, name="Alpha", owner=bob, touch_model="high", tags=["vip", "eu"],
                                lifecycle_stage="onboarding", arr=Decimal("50000"),
                                next_renewal_date=today + dt.timedelta(days=30), domain="alpha.io"),
        "bravo": AccountFactory(organization=org, name="Bravo", owner=bob, touch_model="low", tags=["eu"],
                                lifecycle_stage="mature", arr=Decimal("120000"),
                                next_renewal_date=today + dt.timedelta(days=200)),
        "charlie": AccountFactory(organization=org, name="Charlie", owner=other, touch_model="tech", tags=["vipx"],
                                  lifecycle_stage="renewal", arr=Decimal("8000"),
                                  next_renewal_date=today + dt.timedelta(days=60)),
        "delta": AccountFactory(organization=org, name="Delta", owner=None, touch_model="high", tags=[],
                                lifecycle_stage="mature", arr=Decimal("0")),
        "echo": AccountFactory(organization=org, name="Echo", owner=other, touch_model="low", tags=["VIP"],
                               lifecycle_stage="churned", arr=Decimal("300000"), external_id="SF-ECHO"),
    }  # fmt: skip


@pytest.fixture
def client(org, bob, api):
    return api(org, "csm", bob)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "alp"}, ["Alpha"]),
        ({"q": "alpha.io"}, ["Alpha"]),
        ({"q": "sf-echo"}, ["Echo"]),  # exact external id, case-insensitive
        ({"owner": "me"}, ["Alpha", "Bravo"]),
        ({"unowned": "true"}, ["Delta"]),
        ({"touch_model": ["high", "tech"]}, ["Alpha", "Charlie", "Delta"]),
        ({"arr_min": "8000", "arr_max": "120000"}, ["Alpha", "Bravo", "Charlie"]),
        ({"renewal_within_days": "90"}, ["Alpha", "Charlie"]),
        ({"tag": "vip"}, ["Alpha"]),  # exact element: not "vipx", not "VIP"
        ({"tag": "eu"}, ["Alpha", "Bravo"]),
        ({"lifecycle_stage": ["mature", "churned"]}, ["Bravo", "Delta", "Echo"]),
        ({"external_id": "SF-ECHO"}, ["Echo"]),
    ],
    ids=lambda v: str(v),
)
def test_filters(params, expected, book, client):
    assert names(client.get(URL, params)) == expected


def test_renewal_window_by_dates(book, client):
    today = dt.date.today()
    after, before = today + dt.timedelta(days=31), today + dt.timedelta(days=365)
    window = {"renewal_after": str(after), "renewal_before": str(before)}
    assert names(client.get(URL, window)) == ["Bravo", "Charlie"]


def test_bad_filter_values_are_field_errors(book, client):
    params = {"touch_model": "medium", "arr_min": "lots", "owner": "bob", "lifecycle_stage": "x",
              "renewal_within_days": "99999999999", "renewal_after": "soon"}  # fmt: skip
    response = client.get(URL, params)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "Invalid input."
    assert set(body["errors"]) == set(params)
    assert all(isinstance(msgs, list) and msgs and isinstance(msgs[0], str) for msgs in body["errors"].values())


def test_ordering_and_unknown_ordering(book, client):
    assert names(client.get(URL, {"ordering": "-arr"})) == ["Echo", "Bravo", "Alpha", "Charlie", "Delta"]
    assert names(client.get(URL, {"ordering": "touch_model,-name"}))[:2] == ["Delta", "Alpha"]
    response = client.get(URL, {"ordering": "secret_field"})
    assert response.status_code == 400
    assert "ordering" in response.json()["errors"]


def test_filter_and_ordering_combine(book, client):
    assert names(client.get(URL, {"owner": "me", "ordering": "-arr"})) == ["Bravo", "Alpha"]


def test_pagination_shape_and_cap(org, client):
    AccountFactory.create_batch(7, organization=org)
    first = client.get(URL, {"page_size": 3}).json()
    assert set(first) == {"count", "next", "previous", "results"}
    assert (first["count"], len(first["results"]), first["previous"]) == (7, 3, None)
    second = client.get(first["next"]).json()
    last = client.get(second["next"]).json()
    assert last["next"] is None and len(last["results"]) == 1
    seen = [row["id"] for page in (first, second, last) for row in page["results"]]
    assert len(set(seen)) == 7  # ties broken by id: no row repeated or skipped
    assert client.get(URL, {"page": 99}).status_code == 404


def test_page_size_is_at_most_500(org, client):
    Account.all_orgs.bulk_create([Account(organization=org, name=f"Bulk {i:04d}") for i in range(501)])
    largest = client.get(URL, {"page_size": 500}).json()
    assert (largest["count"], len(largest["results"])) == (501, 500)
    assert largest["next"] is not None
    # More than the maximum is refused with the reason, not silently cut (the schema says 1 to 500).
    refused = client.get(URL, {"page_size": 100_000})
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"page_size": ["Enter a whole number between 1 and 500."]}


def test_validation_errors_name_each_field(org, client, charlie):
    response = client.post(
        URL,
        {"name": "", "touch_model": "medium", "lifecycle_stage": "zombie", "tags": "vip", "owner": charlie.email},
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"name", "touch_model", "lifecycle_stage", "tags", "owner"}
    assert errors["owner"] == [f"No member of this organization has the email {charlie.email}."]
    assert "zombie" in errors["lifecycle_stage"][0]
    assert not Account.all_orgs.filter(organization=org).exists()


def test_malformed_json_is_400_with_the_error_shape(client):
    response = client.generic("POST", URL, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) == {"detail", "errors"}


def test_duplicate_external_id_is_a_field_error_not_a_500(org, client):
    AccountFactory(organization=org, external_id="SF-1")
    response = client.post(URL, {"name": "Dup", "external_id": "SF-1"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["external_id"] == ["Account with this external id already exists."]
    assert client.post(URL, {"name": "Blank", "external_id": ""}, format="json").status_code == 201
    assert client.post(URL, {"name": "Blank 2", "external_id": ""}, format="json").status_code == 201


def test_parent_cannot_be_own_descendant(org, client, bob):
    root = AccountFactory(organization=org, owner=bob)
    child = AccountFactory(organization=org, owner=bob, parent=root)
    response = client.patch(f"{URL}{root.pk}/", {"parent": child.pk}, format="json")
    assert response.status_code == 400
    assert "parent" in response.json()["errors"]


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer rtn_not-a-key", "Token abc"])
def test_unauthenticated_is_401(header, db):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()) == {"detail", "errors"}


def test_ratelimit_headers_count_down(org, client):
    remaining = []
    for _ in range(3):
        response = client.get(URL)
        assert int(response["RateLimit-Limit"]) >= 3
        assert 0 <= int(response["RateLimit-Reset"]) <= 60
        remaining.append(int(response["RateLimit-Remaining"]))
    assert remaining == sorted(remaining, reverse=True) and remaining[0] > remaining[-1]


def test_exhausted_budget_is_429_with_headers(org, api, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"org": "3/min"}}
    client, other_key = api(org, "viewer"), api(org, "viewer")
    statuses = [client.get(URL).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    throttled = client.get(URL)
    assert throttled.status_code == 429
    assert throttled["RateLimit-Remaining"] == "0"
    assert int(throttled["Retry-After"]) > 0
    assert set(throttled.json()) == {"detail", "errors"}
    assert other_key.get(URL).status_code == 200  # one budget per key


def test_upsert_by_external_id_creates_then_updates(org, api):
    client = api(org, "admin")
    created = client.put(f"{URL}external/SF-42/", {"name": "Initech", "touch_model": "high"}, format="json")
    assert created.status_code == 201
    assert created.json()["external_id"] == "SF-42"
    updated = client.put(f"{URL}external/SF-42/", {"region": "APAC"}, format="json")
    assert updated.status_code == 200
    assert (updated.json()["id"], updated.json()["name"], updated.json()["region"]) == (
        created.json()["id"],
        "Initech",
        "APAC",
    )
    assert Account.all_orgs.filter(organization=org, external_id="SF-42").count() == 1
    invalid = client.put(f"{URL}external/SF-43/", {"touch_model": "high"}, format="json")
    assert invalid.status_code == 400 and "name" in invalid.json()["errors"]
    not_object = client.put(f"{URL}external/SF-44/", ["a"], format="json")
    assert not_object.status_code == 400
    dotted = client.put(f"{URL}external/acme.com:001/", {"name": "Dotted"}, format="json")
    assert dotted.status_code == 201 and dotted.json()["external_id"] == "acme.com:001"


def test_arr_at_a_date_with_descendants(org, api, bob):
    parent = AccountFactory(organization=org)
    child = AccountFactory(organization=org, parent=parent)
    grandchild = AccountFactory(organization=org, parent=child)
    other_parent = AccountFactory(organization=org)  # an unrelated hierarchy
    ContractLineFactory(contract__account=parent, quantity=1, annual_unit_price=Decimal("1000"))
    ContractLineFactory(contract__account=child, quantity=2, annual_unit_price=Decimal("500"), discount=Decimal("0.1"))
    ContractLineFactory(
        contract__account=grandchild,
        contract__start_date=dt.date(2027, 1, 1),
        contract__end_date=dt.date(2027, 12, 31),
        quantity=1,
        annual_unit_price=Decimal("700"),
    )
    ContractLineFactory(contract__account=other_parent, quantity=1, annual_unit_price=Decimal("99"))
    client = api(org, "viewer")
    body = client.get(f"{URL}{parent.pk}/arr/", {"date": "2026-06-30"}).json()
    assert body == {
        "account": parent.pk,
        "external_id": parent.external_id,
        "date": "2026-06-30",
        "currency": "USD",
        "arr": "1000.00",
        "hierarchy_arr": "1900.00",
        "descendants": 2,
    }
    later = client.get(f"{URL}{parent.pk}/arr/", {"date": "2027-03-01"}).json()
    assert (later["arr"], later["hierarchy_arr"]) == ("0.00", "700.00")
    bad = client.get(f"{URL}{parent.pk}/arr/", {"date": "30/06/2026"})
    assert bad.status_code == 400 and "date" in bad.json()["errors"]


def test_me(org, api, bob):
    me = api(org, "csm", bob).get("/api/v1/me/").json()
    assert me["organization"]["slug"] == "acme"
    assert me["role"] == "csm"
    assert me["user"]["email"] == bob.email
    assert me["authentication"] == "api_key"
    keyless = api(org, "viewer").get("/api/v1/me/").json()
    assert keyless["user"] is None and keyless["api_key"]["prefix"].startswith("rtn_")


def test_me_with_session(org, alice, other_org):
    MembershipFactory(organization=other_org, user=alice, role="viewer")
    client = APIClient()
    client.force_login(alice)
    me = client.get("/api/v1/me/", HTTP_X_ORGANIZATION="globex").json()
    assert (me["organization"]["slug"], me["role"], me["authentication"], me["api_key"]) == (
        "globex",
        "viewer",
        "session",
        None,
    )


def test_api_root_lists_every_apps_resources(org, api):
    """Regression: ``/api/v1/`` was the accounts router's root, so the browsable API hid health scores,
    renewals, webhooks and the metrics. Every listed link must resolve for the caller."""
    client = api(org, "viewer")
    root = client.get("/api/v1/", HTTP_ACCEPT="application/json")
    assert root.status_code == 200
    links = root.json()
    for prefix in ("accounts", "health-scores", "renewals", "churn-reasons", "webhooks", "write-keys", "tickets"):
        assert links[prefix].endswith(f"/api/v1/{prefix}/")
    assert links["metrics/retention"].endswith("/api/v1/metrics/retention/")
    assert links["me"].endswith("/api/v1/me/")
    statuses = {
        prefix: client.get(url).status_code for prefix, url in links.items() if not prefix.startswith("metrics/")
    }  # the metrics need their query parameters
    # A viewer reads everything listed except what is admins' only: the write keys (ingestion secrets),
    # the pending invitations (who was invited, by whom) and the audit log (who changed what).
    assert {prefix for prefix, code in statuses.items() if code != 200} == {"write-keys", "invitations", "audit-log"}
    assert statuses["write-keys"] == statuses["invitations"] == statuses["audit-log"] == 403


def test_stage_filter_still_works_after_the_schema_is_generated(book, client):
    """Regression: generating the OpenAPI schema (``/api/schema/``, which the docs page loads) cached a
    choice-less form field on the class-level stage filter; every later ``lifecycle_stage`` filter, in the
    API and on My book, was then refused until the process restarted."""
    from accounts.filtersets import AccountFilterSet

    assert client.get("/api/schema/").status_code == 200
    assert hasattr(AccountFilterSet.base_filters["lifecycle_stage"], "_field")  # the schema built one
    response = client.get("/api/v1/accounts/", {"lifecycle_stage": ["mature", "churned"]})
    assert response.status_code == 200, response.json()
    assert names(response) == ["Bravo", "Delta", "Echo"]


def test_browsable_api_carries_retains_icon_and_branding(org, alice):
    """Regression: the browsable pages had no icon link, so every visit logged a 404 for /favicon.ico."""
    client = APIClient()
    client.force_login(alice)
    page = client.get("/api/v1/me/", HTTP_ACCEPT="text/html").content.decode()
    assert 'rel="icon"' in page and "img/retain.svg" in page
    assert "Retain API" in page and "django-rest-framework.org" not in page
