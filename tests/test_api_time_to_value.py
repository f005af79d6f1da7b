"""``GET /api/v1/metrics/time-to-value/`` (issue 15, item 2): the golden figures of tests/test_time_to_value.py
through the API, every role, two organizations, validation (400 with the error shape), the schema and a
constant number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from .factories import AccountFactory
from .ttv_helpers import at, build_book, d, make_project

pytestmark = pytest.mark.django_db
URL = "/api/v1/metrics/time-to-value/"
PERIOD = {"start": "2026-01-01", "end": "2026-06-30"}


@pytest.fixture
def book(org, other_org, make_member):
    return build_book(org, other_org, make_member)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(at(dt.date(2026, 6, 30)), tick=False):
        yield


@pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
def test_every_role_reads_the_figures(role, org, book, api):
    response = api(org, role).get(URL, PERIOD)
    assert response.status_code == 200, response.json()
    body = response.json()
    # The golden figures (tests/test_time_to_value.py works them out).
    assert body["overall"]["go_live"] == {"n": 4, "median": 59.5, "p25": 47.5, "p75": 70.0, "mean": 58.0,
                                          "running": 3, "running_median_age": 29.0}  # fmt: skip
    assert body["overall"]["on_time"]["rate"] == 0.5
    assert body["at_risk"]["share"] == 0.75
    assert [t["quarter"] for t in body["trend"]] == ["2026-Q1", "2026-Q2"]
    assert {p["account_name"] for p in body["projects"]} == {f"A{i}" for i in (1, 2, 3, 4, 5, 6, 7, 9)}
    assert body["today"] == "2026-06-30" and body["start"] == "2026-01-01"


def test_filters_and_no_projects(org, book, api):
    client = api(org, "csm")
    bob = client.get(URL, {**PERIOD, "owner": book["bob"].pk, "projects": "false"}).json()
    assert bob["overall"]["go_live"]["median"] == 61.5 and bob["projects"] == [] and bob["owner"] == book["bob"].pk
    seg = client.get(URL, {**PERIOD, "segment": book["enterprise"].pk}).json()
    assert seg["overall"]["go_live"]["median"] == 50.0 and seg["segment"] == book["enterprise"].pk
    default = client.get(URL).json()  # the last four quarters: 2025-Q3 → today, P7 (2025-11-01) included
    assert (default["start"], default["end"], default["overall"]["projects"]) == ("2025-07-01", "2026-06-30", 8)


def test_two_organizations_never_see_each_other(org, other_org, book, api, make_member):
    theirs = api(other_org, "admin").get(URL, PERIOD).json()
    # Only the other organization's one project (kickoff 02-01, live 02-02: one day).
    assert theirs["overall"]["go_live"]["n"] == 1 and theirs["overall"]["go_live"]["median"] == 1.0
    assert [p["account"] for p in theirs["projects"]] == [p["account"] for p in theirs["projects"][:1]]
    assert not {p["account"] for p in theirs["projects"]} & {a.pk for a in book["accounts"].values()}
    # Another organization's segment or member is "no such" here: a 400 that reveals nothing.
    outsider = make_member(other_org, "csm").user
    for params, field in (({"segment": book["enterprise"].pk}, "segment"), ({"owner": book["bob"].pk}, "owner")):
        response = api(other_org, "admin").get(URL, params)
        assert response.status_code == 400 and field in response.json()["errors"]
    assert api(org, "admin").get(URL, {"owner": outsider.pk}).status_code == 400
    # A key of one organization naming the other is a 404, like a session that is not a member there.
    response = api(org, "admin").get(URL, HTTP_X_ORGANIZATION=other_org.slug)
    assert response.status_code == 404 and response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    "params,field",
    [
        ({"start": "2026-13-01"}, "start"),
        ({"end": "yesterday"}, "end"),
        ({"start": "2026-06-01", "end": "2026-01-01"}, "end"),
        ({"start": "2010-01-01", "end": "2026-01-01"}, "end"),
        ({"segment": "x"}, "segment"),
        ({"segment": "0"}, "segment"),
        ({"owner": "-3"}, "owner"),
        ({"projects": "maybe"}, "projects"),
    ],
)
def test_bad_query_parameters_are_a_400_with_the_error_shape(params, field, org, api):
    response = api(org, "viewer").get(URL, params)
    assert response.status_code == 400
    body = response.json()
    assert field in body["errors"] and body["detail"]


def test_unauthenticated_is_a_json_401(client):
    response = client.get(URL)
    assert response.status_code in (401, 403) and response["Content-Type"].startswith("application/json")


def test_query_count_does_not_grow_with_projects(org, bob, api):
    client = api(org, "csm", bob)

    def build(n: int) -> None:
        for i in range(n):
            account = AccountFactory(organization=org, owner=bob)
            make_project(account, kickoff=d(2, 1), target=d(4, 1), go_live=d(3, 1) if i % 2 else None,
                         milestones=[{"key": "x", "name": "X", "due_on": d(5, 1)}])  # fmt: skip

    build(3)
    client.get(URL, PERIOD)  # warm-up: the key's last_used_at write happens once
    with CaptureQueriesContext(connection) as small:
        assert client.get(URL, PERIOD).status_code == 200
    build(20)
    with CaptureQueriesContext(connection) as large:
        body = client.get(URL, PERIOD).json()
    assert body["overall"]["projects"] == 23
    assert len(large.captured_queries) == len(small.captured_queries) <= 16


def test_schema_describes_the_endpoint(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"][URL]["get"]
    assert operation["tags"] == ["metrics"]
    assert {p["name"] for p in operation["parameters"]} >= {"start", "end", "segment", "owner", "projects"}
    assert {"200", "400"} <= set(operation["responses"])
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = schema["components"]["schemas"][ref]["properties"]
    assert {"overall", "by_segment", "by_csm", "by_cohort", "trend", "at_risk", "projects"} <= set(fields)


def test_the_api_root_lists_it(api, org):
    assert api(org, "viewer").get("/api/v1/").json()["metrics/time-to-value"].endswith(URL)
