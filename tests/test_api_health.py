"""The health API (spec §8): ``/accounts/{id}/health/`` (exact shape, explanation), ``health-scores``
(filters), ``health-overrides`` and ``csm-pulses`` (roles, audit trail), ``/metrics/portfolio/``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Membership, Segment
from health.explain import explain
from health.models import CsmPulse, HealthOverride, HealthScore, ScorecardVersion

from .factories import AccountFactory, TeamFactory
from .signal_factories import (
    HealthScoreFactory,
    HealthSnapshotFactory,
    components,
    score_of,
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
    return {"admin": alice, "leader": lena, "csm": bob, "viewer": vic, "bob": bob, "dave": dave}


def scored_history(account: Any, today: dt.date, *, version_change: bool = False) -> None:
    """Eight days of snapshots: a week ago adoption 90/support 50/nps 70; today adoption 40/support 60/nps None."""
    org = account.organization
    v1 = ScorecardVersion.all_orgs.filter(organization=org).order_by("number").first()
    v2 = v1
    if version_change:
        v2 = ScorecardVersion.all_orgs.create(
            organization=org, scorecard=v1.scorecard, number=2, definition=v1.definition, note="v2"
        )
    weights = {"adoption": 25.0, "support": 10.0, "nps": 15.0}
    before = components({"adoption": 90.0, "support": 50.0, "nps": 70.0}, weights)
    now = components({"adoption": 40.0, "support": 60.0, "nps": None}, weights)
    for offset in range(8, 0, -1):
        HealthSnapshotFactory(
            account=account, date=today - dt.timedelta(days=offset), components=before, scorecard_version=v1
        )
    snap = HealthSnapshotFactory(account=account, date=today, components=now, scorecard_version=v2)
    HealthScoreFactory(
        account=account,
        score=snap.score,
        scorecard=v2.scorecard,
        scorecard_version=v2,
        delta_7=snap.score - score_of(before),
        trend="down",
    )


class TestAccountHealth:
    def test_exact_shape_and_explanation(self, org, api):
        today = timezone.localdate()
        account = AccountFactory(organization=org)
        scored_history(account, today, version_change=True)
        body = api(org, "viewer").get(f"{API}/accounts/{account.pk}/health/").json()
        spec_keys = {
            "score",
            "color",
            "computed_at",
            "scorecard_version",
            "override",
            "components",
            "missing",
            "changes",
            "history",
        }
        assert spec_keys <= set(body)
        assert {"computed_color", "dragging"} <= set(body)
        # adoption 40 × 25/35 + support 60 × 10/35 = 45.714… → 45.7 red
        assert body["score"] == 45.7
        assert body["color"] == body["computed_color"] == "red"
        assert body["override"] is None
        assert body["missing"] == ["nps"]
        comps = {c["key"]: c for c in body["components"]}
        # the spec's keys, plus ``value`` (what the signal measured)
        assert set(comps["adoption"]) == {"key", "name", "signal", "value", "score", "weight", "contribution"}
        scored = [c for c in body["components"] if c["score"] is not None]
        assert sum(c["weight"] for c in scored) == pytest.approx(1.0, abs=1e-9)
        assert sum(c["contribution"] for c in scored) == pytest.approx(body["score"], abs=1e-9)
        assert comps["adoption"]["weight"] == pytest.approx(25 / 35, abs=1e-4)
        assert comps["nps"]["weight"] == 0 and comps["nps"]["contribution"] is None
        # adoption loses 0.714 × 60 = 42.9 points, support 0.286 × 40 = 11.4: adoption drags most
        assert body["dragging"]["key"] == "adoption"
        changes = body["changes"]
        assert changes[0]["type"] == "scorecard_version" and (changes[0]["from"], changes[0]["to"]) == (1, 2)
        moves = [c for c in changes if c["type"] == "component"]
        assert [(c["key"], c["delta"]) for c in moves] == [("adoption", -50.0), ("support", 10.0), ("nps", None)]
        assert len(body["history"]) == 9
        assert body["history"][-1] == {"date": today.isoformat(), "score": 45.7, "color": "red"}
        assert body["history"][0]["score"] > body["history"][-1]["score"]

    def test_constant_queries(self, org):
        today = timezone.localdate()
        small, big = AccountFactory(organization=org), AccountFactory(organization=org)
        HealthSnapshotFactory(account=small, date=today)
        for offset in range(90):
            HealthSnapshotFactory(account=big, date=today - dt.timedelta(days=offset))
        HealthScoreFactory(account=small)
        HealthScoreFactory(account=big)
        counts = []
        for account in (small, big):
            with CaptureQueriesContext(connection) as ctx:
                result = explain(account, today=today)
            counts.append(len(ctx.captured_queries))
        assert counts == [2, 2]
        assert len(result["history"]) == 90

    def test_never_scored_account(self, org, api):
        account = AccountFactory(organization=org)
        body = api(org).get(f"{API}/accounts/{account.pk}/health/").json()
        assert body["score"] is None and body["color"] is None
        assert body["components"] == body["history"] == body["changes"] == []
        assert body["dragging"] is None

    def test_other_org_account_is_404(self, org, other_org, api):
        theirs = AccountFactory(organization=other_org)
        scored_history(theirs, timezone.localdate())
        response = api(org).get(f"{API}/accounts/{theirs.pk}/health/")
        missing = api(org).get(f"{API}/accounts/{theirs.pk + 10_000}/health/")
        assert response.status_code == missing.status_code == 404
        assert response.json() == missing.json()

    def test_override_wins_and_computed_score_stays(self, org, api, people):
        account = AccountFactory(organization=org, owner=people["bob"])
        scored_history(account, timezone.localdate())
        created = api(org, "csm", people["bob"]).post(
            f"{API}/health-overrides/",
            {"account": account.pk, "color": "green", "reason_code": "known_data_gap", "reason": "Usage feed broken"},
            format="json",
        )
        assert created.status_code == 201, created.json()
        body = api(org).get(f"{API}/accounts/{account.pk}/health/").json()
        assert body["color"] == "green" and body["computed_color"] == "red" and body["score"] == 45.7
        assert body["override"]["reason"] == "Usage feed broken"
        assert body["override"]["computed_score_at_creation"] == 45.7


class TestOverrides:
    def post(self, client, account, **extra):
        body = {"account": account.pk, "color": "yellow", "reason_code": "other", "reason": "Because", **extra}
        return client.post(f"{API}/health-overrides/", body, format="json")

    @pytest.mark.parametrize(
        ("role", "own", "status"),
        [
            ("admin", False, 201),
            ("leader", True, 201),
            ("leader", False, 403),
            ("csm", True, 201),
            ("csm", False, 403),
            ("viewer", True, 403),
        ],
    )
    def test_roles(self, org, api, people, role, own, status):
        owner = people["bob"] if own else people["dave"]
        account = AccountFactory(organization=org, owner=owner)
        response = self.post(api(org, role, people[role]), account)
        assert response.status_code == status, response.json()
        assert HealthOverride.all_orgs.filter(account=account).count() == (1 if status == 201 else 0)

    def test_forced_red_default_expiry_and_reason_required(self, org, api, people):
        account = AccountFactory(organization=org, owner=people["bob"])
        client = api(org, "csm", people["bob"])
        missing = self.post(client, account, reason="  ")
        assert missing.status_code == 400 and "reason" in missing.json()["errors"]
        response = self.post(client, account, color="green", reason_code="customer_will_churn", reason="Told us")
        assert response.status_code == 201
        body = response.json()
        assert body["color"] == "red" and body["active"] is True
        expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
        assert abs((expires - timezone.now()) - dt.timedelta(days=30)) < dt.timedelta(minutes=1)
        health = HealthScore.all_orgs.get(account=account)
        assert health.color == "red" and health.override_id == body["id"] and health.score is None
        past = self.post(client, account, expires_at="2020-01-01T00:00:00Z")
        assert past.status_code == 400 and "expires_at" in past.json()["errors"]

    def test_audit_trail_supersede_and_clear(self, org, api, people):
        account = AccountFactory(organization=org, owner=people["bob"])
        HealthScoreFactory(account=account, score=Decimal("80.0"))
        client = api(org, "csm", people["bob"])
        first = self.post(client, account, color="red").json()
        second = self.post(client, account, color="yellow").json()
        rows = {o.pk: o for o in HealthOverride.all_orgs.filter(account=account)}
        assert len(rows) == 2
        assert rows[first["id"]].cleared_at is not None and rows[first["id"]].cleared_by == people["bob"]
        assert HealthScore.all_orgs.get(account=account).color == "yellow"
        assert (
            client.patch(f"{API}/health-overrides/{second['id']}/", {"reason": "x"}, format="json").status_code == 405
        )
        cleared = client.post(f"{API}/health-overrides/{second['id']}/clear/")
        assert cleared.status_code == 200 and cleared.json()["active"] is False
        health = HealthScore.all_orgs.get(account=account)
        assert (health.color, health.override_id, health.score) == ("green", None, Decimal("80.0"))
        assert HealthOverride.all_orgs.filter(account=account).count() == 2  # nothing deleted
        listed = client.get(f"{API}/health-overrides/", {"account": account.pk, "active": "false"}).json()
        assert listed["count"] == 2

    def test_delete_clears(self, org, api, people):
        account = AccountFactory(organization=org, owner=people["bob"])
        made = self.post(api(org, "csm", people["bob"]), account).json()
        assert api(org, "viewer", people["viewer"]).delete(f"{API}/health-overrides/{made['id']}/").status_code == 403
        assert api(org, "csm", people["dave"]).delete(f"{API}/health-overrides/{made['id']}/").status_code == 403
        assert api(org, "leader", people["leader"]).delete(f"{API}/health-overrides/{made['id']}/").status_code == 204
        override = HealthOverride.all_orgs.get(pk=made["id"])
        assert override.cleared_at is not None and override.cleared_by == people["leader"]

    def test_expired_override_is_not_active(self, org, api, people):
        from health.overrides import release_expired_overrides

        account = AccountFactory(organization=org, owner=people["bob"])
        HealthScoreFactory(account=account, score=Decimal("30.0"))
        made = self.post(api(org, "csm", people["bob"]), account, color="green").json()
        HealthOverride.all_orgs.filter(pk=made["id"]).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
        body = api(org).get(f"{API}/accounts/{account.pk}/health/").json()
        assert body["override"] is None and body["color"] == "red"
        assert release_expired_overrides(org) == 1
        assert HealthScore.all_orgs.get(account=account).color == "red"


class TestPulses:
    def test_create_and_roles(self, org, api, people):
        own = AccountFactory(organization=org, owner=people["bob"])
        other = AccountFactory(organization=org, owner=people["dave"])
        body = {"account": own.pk, "color": "red", "reason_codes": ["competitor"], "note": "Evaluating X"}
        created = api(org, "csm", people["bob"]).post(f"{API}/csm-pulses/", body, format="json")
        assert created.status_code == 201, created.json()
        assert created.json()["reason_codes"] == ["competitor"]
        assert (
            api(org, "csm", people["bob"])
            .post(f"{API}/csm-pulses/", {**body, "account": other.pk}, format="json")
            .status_code
            == 403
        )
        assert api(org, "viewer", people["viewer"]).post(f"{API}/csm-pulses/", body, format="json").status_code == 403
        bad = api(org).post(f"{API}/csm-pulses/", {**body, "reason_codes": ["nope"]}, format="json")
        assert bad.status_code == 400 and "reason_codes" in bad.json()["errors"]
        assert CsmPulse.all_orgs.filter(account=own).count() == 1
        pulse = created.json()["id"]
        assert api(org).delete(f"{API}/csm-pulses/{pulse}/").status_code == 405


class TestHealthScores:
    @pytest.fixture
    def rows(self, org, people):
        red = HealthScoreFactory(
            account=AccountFactory(organization=org, owner=people["bob"], touch_model="high", arr=Decimal("1000")),
            score=Decimal("20.0"),
            delta_7=Decimal("-12.0"),
        )
        yellow = HealthScoreFactory(
            account=AccountFactory(organization=org, owner=people["dave"], touch_model="low", arr=Decimal("5000")),
            score=Decimal("60.0"),
        )
        green = HealthScoreFactory(
            account=AccountFactory(organization=org, touch_model="tech", arr=Decimal("9000")),
            score=Decimal("90.0"),
            color="red",
        )  # overridden to red
        return red, yellow, green

    def ids(self, client, **params):
        response = client.get(f"{API}/health-scores/", params)
        assert response.status_code == 200, response.json()
        return {r["account"] for r in response.json()["results"]}

    def test_row_shape(self, org, api, rows):
        red, *_ = rows
        body = api(org, "viewer").get(f"{API}/health-scores/", {"account": red.account_id}).json()["results"][0]
        assert {
            "account",
            "account_external_id",
            "score",
            "color",
            "computed_color",
            "computed_at",
            "delta_7",
            "delta_30",
            "trend",
            "scorecard",
        } <= set(body)
        assert (body["score"], body["color"], body["delta_7"]) == (20.0, "red", -12.0)
        assert body["account_external_id"] == red.account.external_id

    def test_filters(self, org, api, people, rows):
        red, yellow, green = rows
        client = api(org, "csm", people["bob"])
        assert self.ids(client, color="red") == {red.account_id, green.account_id}
        assert self.ids(client, computed_color="red") == {red.account_id}
        assert self.ids(client, score_min=50, score_max=70) == {yellow.account_id}
        assert self.ids(client, owner="me") == {red.account_id}
        assert self.ids(client, owner=people["dave"].pk) == {yellow.account_id}
        assert self.ids(client, touch_model="tech") == {green.account_id}
        big = Segment.all_orgs.create(
            organization=org,
            name="Big",
            rules={"match": "all", "conditions": [{"field": "arr", "op": "gte", "value": 4000}]},
        )
        assert self.ids(client, segment=big.pk) == {yellow.account_id, green.account_id}
        ordered = client.get(f"{API}/health-scores/", {"ordering": "-score"}).json()["results"]
        assert [r["score"] for r in ordered] == [90.0, 60.0, 20.0]
        assert client.post(f"{API}/health-scores/", {}, format="json").status_code == 405

    def test_segment_of_other_org_matches_nothing(self, org, other_org, api, rows):
        theirs = Segment.all_orgs.create(organization=other_org, name="All", rules={})
        assert self.ids(api(org), segment=theirs.pk) == set()


class TestPortfolioMetrics:
    def test_counts_arr_segments_owners(self, org, other_org, api, people):
        for score, arr, owner in [(20, 1000, "bob"), (30, 2000, "bob"), (60, 5000, "dave"), (90, 7000, "dave")]:
            account = AccountFactory(organization=org, owner=people[owner], arr=Decimal(arr), touch_model="high")
            HealthScoreFactory(account=account, score=Decimal(score))
        AccountFactory(organization=org, arr=Decimal(400), touch_model="tech")  # unscored, unowned
        AccountFactory(organization=org, arr=Decimal(999), churned_at=timezone.localdate())  # not in the portfolio
        HealthScoreFactory(account=AccountFactory(organization=other_org, arr=Decimal(10**6)), score=Decimal(10))
        Segment.all_orgs.create(
            organization=org,
            name="High model",
            position=9,
            rules={"conditions": [{"field": "touch_model", "op": "eq", "value": "high"}]},
        )
        body = api(org, "viewer", people["viewer"]).get(f"{API}/metrics/portfolio/").json()
        assert body["counts"] == {"red": 2, "yellow": 1, "green": 1, "unscored": 1}
        assert body["arr_at_risk"] == "3000.00"
        assert body["arr_by_color"]["green"] == "7000.00"
        assert body["accounts"] == 5 and body["arr"] == "15400.00"
        segments = {s["name"]: s for s in body["by_segment"]}
        # default segments are by ARR: every account here is tech touch (< 50k)
        assert segments["High model"]["counts"] == {"red": 2, "yellow": 1, "green": 1, "unscored": 0}
        assert segments["Tech touch"]["counts"] == {"red": 2, "yellow": 1, "green": 1, "unscored": 1}
        assert segments["High touch"]["accounts"] == 0
        owners = {o["owner"]: o for o in body["by_owner"]}
        assert owners[people["bob"].pk]["arr_at_risk"] == "3000.00"
        assert owners[None]["counts"]["unscored"] == 1


class TestWithTheEngine:
    """The real recompute writes what the explanation reads; overrides survive recomputes."""

    def test_recompute_then_explain_and_override_survives(self, org, api, people):
        from feedback.models import SurveyResponse
        from health.services import recompute_health

        today = timezone.localdate()
        account = AccountFactory(organization=org, owner=people["bob"])
        noon = dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)
        CsmPulse.all_orgs.create(organization=org, account=account, color="red", created_at=noon)
        SurveyResponse.all_orgs.create(organization=org, account=account, kind="nps", score=10, responded_at=noon)
        recompute_health(org, as_of=today, latest=True)
        body = api(org).get(f"{API}/accounts/{account.pk}/health/").json()
        # NPS 100 → 100 points × 15, pulse red → 0 × 10: 60.0 yellow
        assert (body["score"], body["color"]) == (60.0, "yellow")
        scored = [c for c in body["components"] if c["score"] is not None]
        assert {c["key"] for c in scored} == {"nps", "csm_pulse"}
        assert sum(c["weight"] for c in scored) == pytest.approx(1.0)
        assert sum(c["contribution"] for c in scored) == pytest.approx(60.0)
        assert body["dragging"]["key"] == "csm_pulse"
        assert "adoption" in body["missing"]
        assert body["scorecard_version"]["number"] == 1
        client = api(org, "csm", people["bob"])
        made = client.post(f"{API}/health-overrides/", {"account": account.pk, "color": "yellow",
                                                         "reason_code": "customer_will_churn", "reason": "Told us"},
                           format="json").json()  # fmt: skip
        assert made["color"] == "red"
        recompute_health(org, as_of=today, latest=True)  # never wipes the override
        health = HealthScore.all_orgs.get(account=account)
        assert (health.color, health.computed_color, health.override_id) == ("red", "yellow", made["id"])
        client.post(f"{API}/health-overrides/{made['id']}/clear/")
        recompute_health(org, as_of=today, latest=True)
        health = HealthScore.all_orgs.get(account=account)
        assert (health.color, health.override_id) == ("yellow", None)


def test_portfolio_metrics_constant_queries(org, api, people, django_assert_num_queries):
    client = api(org, "leader", people["leader"])
    for i in range(4):
        HealthScoreFactory(account=AccountFactory(organization=org, owner=people["bob"]), score=Decimal(20 * i))
    client.get(f"{API}/metrics/portfolio/")  # warm-up: the key's last_used_at write happens once
    # key, membership; segments, the accounts scan, owners' names
    with django_assert_num_queries(5):
        assert client.get(f"{API}/metrics/portfolio/").status_code == 200
    for i in range(40):
        owner = [people["bob"], people["dave"], people["leader"]][i % 3]
        HealthScoreFactory(account=AccountFactory(organization=org, owner=owner), score=Decimal(i))
    Segment.all_orgs.create(
        organization=org, name="Mine", rules={"conditions": [{"field": "owner", "op": "eq", "value": people["bob"].pk}]}
    )
    with django_assert_num_queries(5):
        body = client.get(f"{API}/metrics/portfolio/").json()
    assert body["accounts"] == 44
    assert {s["name"]: s["accounts"] for s in body["by_segment"]}["Mine"] == 4 + 14


def test_churn_override_needs_no_colour_and_scores_export_csv(org, api, people):
    account = AccountFactory(organization=org, owner=people["bob"])
    HealthScoreFactory(account=account, score=Decimal("88.0"))
    client = api(org, "csm", people["bob"])
    made = client.post(f"{API}/health-overrides/", {"account": account.pk, "reason_code": "customer_will_churn",
                                                     "reason": "Signed with a competitor"}, format="json")  # fmt: skip
    assert made.status_code == 201 and made.json()["color"] == "red"
    no_colour = client.post(f"{API}/health-overrides/", {"account": account.pk, "reason_code": "other",
                                                          "reason": "x"}, format="json")  # fmt: skip
    assert no_colour.status_code == 400 and "color" in no_colour.json()["errors"]
    csv = client.get(f"{API}/health-scores/", {"format": "csv"})
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    text = b"".join(csv.streaming_content).decode() if csv.streaming else csv.content.decode()
    assert text.lstrip("\ufeff").startswith("id,account,account_external_id")
    assert ",88.0,red,green," in text
