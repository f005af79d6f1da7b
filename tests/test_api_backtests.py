"""``/api/v1/scorecards/{id}/backtests/`` and ``/suggestion/``: the flow, the roles and the isolation.

The generic isolation suite (tests/isolation.py) addresses flat resources (``/api/v1/<name>/``); these
routes hang under a scorecard, so their isolation cases are written out here (and named in
``tests/test_api_isolation.py``)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from cs_platform.choices import JobStatus
from health.defaults import ensure_default_scorecard
from health.services import save_scorecard_version
from renewals.models import Backtest

from .backtest_builders import Row, build_history, one_component

pytestmark = pytest.mark.django_db
DUE = dt.date(2026, 6, 30)
WINDOW = {"date_from": "2026-06-01", "date_to": "2026-12-31"}


def _setup(org, n=40, seed=3):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 100, n)
    rows = [
        Row({"a": float(x)}, "churned" if x < 40 else "renewed", DUE + dt.timedelta(days=i)) for i, x in enumerate(a)
    ]
    build_history(org, rows, prefix=f"B{org.pk}")
    card = ensure_default_scorecard(org.pk)
    version = save_scorecard_version(card, {"components": [one_component("a")]}, user=None, note="a only")
    return card, version


def _url(card, suffix=""):
    return f"/api/v1/scorecards/{card.pk}/{suffix}"


def test_admin_starts_a_backtest_and_reads_its_result(org, api, django_capture_on_commit_callbacks):
    from renewals.tasks import run_backtest_task

    card, version = _setup(org)
    client = api(org, "admin")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(_url(card, "backtests/"), {**WINDOW, "scorecard_version": version.pk}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["scorecard_version"] == version.pk and body["horizon_days"] == 90
    assert body["auc"] is None and len(callbacks) == 1
    run_backtest_task.apply(args=(org.pk, body["id"]), kwargs={"job_id": body["job"]})
    detail = client.get(_url(card, f"backtests/{body['id']}/")).json()
    assert detail["status"] == JobStatus.SUCCEEDED and detail["result"]["scored"] == 40
    assert detail["auc"] == detail["result"]["auc"] == 1.0  # churn exactly below 40 points
    assert detail["progress_done"] == detail["progress_total"] == 40
    listed = client.get(_url(card, "backtests/")).json()
    assert [row["id"] for row in listed["results"]] == [body["id"]] and "result" not in listed["results"][0]
    # A leader reads; nobody changes or deletes a backtest.
    leader = api(org, "leader")
    assert leader.get(_url(card, f"backtests/{body['id']}/")).status_code == 200
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)(_url(card, f"backtests/{body['id']}/")).status_code == 405


def test_suggestion_endpoint(org, api):
    card, version = _setup(org, n=60)
    response = api(org, "leader").get(_url(card, "suggestion/"), WINDOW)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["n_train"], body["n_test"]) == (42, 18) and body["suggested_weights"] == {"a": 100.0}
    assert body["suggested_definition"]["components"][0]["weight"] == 100
    too_short = api(org, "admin").get(_url(card, "suggestion/"), {"date_from": "2026-06-01", "date_to": "2026-07-05"})
    assert too_short.status_code == 400 and "20 scored renewals" in too_short.json()["errors"]["date_from"][0]


@pytest.mark.parametrize("role", ["csm", "viewer"])
def test_backtest_roles_csm_and_viewer_are_refused_everything(role, org, api):
    card, version = _setup(org, n=5)
    backtest = Backtest.all_orgs.create(organization=org, scorecard=card, scorecard_version=version,
                                        date_from=DUE, date_to=DUE)  # fmt: skip
    client = api(org, role)
    assert client.get(_url(card, "backtests/")).status_code == 403
    assert client.get(_url(card, f"backtests/{backtest.pk}/")).status_code == 403
    assert client.get(_url(card, "suggestion/"), WINDOW).status_code == 403
    assert client.post(_url(card, "backtests/"), WINDOW, format="json").status_code == 403
    assert Backtest.all_orgs.count() == 1


def test_backtest_roles_leader_reads_but_cannot_start(org, api):
    card, _ = _setup(org, n=5)
    assert api(org, "leader").post(_url(card, "backtests/"), WINDOW, format="json").status_code == 403
    assert not Backtest.all_orgs.exists()


def test_bad_bodies_are_400(org, api):
    card, _ = _setup(org, n=5)
    client = api(org, "admin")
    cases = [
        ({**WINDOW, "organization": 1}, "organization"),
        ({"date_from": "2026-06-01", "date_to": "2026-05-01"}, "date_to"),
        ({**WINDOW, "horizon_days": 0}, "horizon_days"),
        ({**WINDOW, "scorecard_version": 999999}, "scorecard_version"),
    ]
    for body, field in cases:
        response = client.post(_url(card, "backtests/"), body, format="json")
        assert response.status_code == 400 and field in response.json()["errors"], (body, response.content)
    assert not Backtest.all_orgs.exists()


def test_backtest_isolation_routes_stay_in_their_organization(org, other_org, api):
    """Another organization's scorecard is a 404 on every route (as a missing one); its versions are a 400 on
    ``scorecard_version``; its backtests are never listed or readable, even under one's own scorecard id."""
    mine, my_version = _setup(org, n=5)
    theirs, their_version = _setup(other_org, n=5)
    their_backtest = Backtest.all_orgs.create(organization=other_org, scorecard=theirs, scorecard_version=their_version,
                                              date_from=DUE, date_to=DUE)  # fmt: skip
    mine_backtest = Backtest.all_orgs.create(organization=org, scorecard=mine, scorecard_version=my_version,
                                             date_from=DUE, date_to=DUE)  # fmt: skip
    client = api(org, "admin")
    assert client.get(_url(theirs, "backtests/")).status_code == 404
    assert client.get(_url(theirs, f"backtests/{their_backtest.pk}/")).status_code == 404
    assert client.get(_url(mine, f"backtests/{their_backtest.pk}/")).status_code == 404
    assert client.get(_url(theirs, "suggestion/"), WINDOW).status_code == 404
    assert client.post(_url(theirs, "backtests/"), WINDOW, format="json").status_code == 404
    response = client.post(_url(mine, "backtests/"), {**WINDOW, "scorecard_version": their_version.pk}, format="json")
    assert response.status_code == 400 and "scorecard_version" in response.json()["errors"]
    suggestion = client.get(_url(mine, "suggestion/"), {**WINDOW, "scorecard_version": their_version.pk})
    assert suggestion.status_code == 400
    assert [row["id"] for row in client.get(_url(mine, "backtests/")).json()["results"]] == [mine_backtest.pk]
    assert Backtest.all_orgs.filter(organization=other_org).count() == 1


def test_backtest_list_query_count_is_constant(org, api):
    """No N+1: the list costs the same number of queries for 2 and for 22 backtests (version, job and
    creator come with the rows)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    card, version = _setup(org, n=5)
    client = api(org, "admin")

    def make(count):
        Backtest.all_orgs.bulk_create(
            [
                Backtest(organization=org, scorecard=card, scorecard_version=version, date_from=DUE, date_to=DUE)
                for _ in range(count)
            ]  # fmt: skip
        )
        with CaptureQueriesContext(connection) as queries:
            assert client.get(_url(card, "backtests/"), {"page_size": 100}).status_code == 200
        return len(queries)

    make(0)  # warm-up: the first request of a key records its use
    assert make(2) == make(20) <= 5
