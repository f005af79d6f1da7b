"""Golden test of NPS, CSAT and CES (spec §6) on a hand-built set, per account, segment, CSM (owner) and
organization, through feedback.analytics and the /api/v1/metrics/nps|csat|ces/ endpoints (spec §8).

The organization runs on New York time, so a response at 23:30 local on 31 March (03:30 UTC on 1 April)
falls in March, and one at 00:00 local on 1 April does not.

Accounts (owner, touch model, industry):
    A1 priya, high, Software    A2 priya, high, Fintech    A3 sam, low, Software    A4 (none), tech, Retail
Segments: "Big" = touch_model high (A1, A2), position 0; "Software" = industry Software (A1, A3), position 1;
A4 matches none → group None.

NPS responses in March 2026 (P = promoter 9–10, Pa = passive 7–8, D = detractor 0–6):
    A1: 10, 9, 6         P2 Pa0 D1 n3  → (2 − 1) / 3 × 100 = 33.33…  → 33.3
    A2: 7, 3             P0 Pa1 D1 n2  → (0 − 1) / 2 × 100            → −50.0
    A3: 9, 9, 8, 0*      P2 Pa1 D1 n4  → (2 − 1) / 4 × 100            → 25.0   (*23:30 NY on 31 March)
    A4: 10               P1 Pa0 D0 n1                                 → 100.0
    org:                 P5 Pa2 D3 n10 → (5 − 3) / 10 × 100           → 20.0
    Big (A1+A2):         P2 Pa1 D2 n5  → 0 / 5                        → 0.0
    Software (A1+A3):    P4 Pa1 D2 n7  → 2 / 7 × 100 = 28.571…       → 28.6
    None (A4):                                                         → 100.0
    CSM priya (A1+A2) = Big → 0.0; sam (A3) → 25.0; no owner (A4) → 100.0
Outside March: A1 NPS 0 at 23:59 NY on 28 February, A1 NPS 10 at 00:00 NY on 1 April.

CSAT in March (satisfied = 4–5):  A1: 5, 4, 3 → 2/3 = 66.7;  A2: 1 → 0.0;  org 2/4 → 50.0
CES in March (easy = ≥ 5):        A3: 7, 5, 4 → 2/3 = 66.7;  A4: 2 → 0.0;  org 2/4 → 50.0
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from accounts.models import Segment
from feedback.analytics import ces_figures, figures, nps_figures
from feedback.models import SurveyResponse

from .factories import AccountFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")
START, END = dt.date(2026, 3, 1), dt.date(2026, 3, 31)


def at(day: str, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour, minute), tzinfo=NY)


@pytest.fixture
def book(org):
    org.time_zone = "America/New_York"
    org.save()
    priya = UserFactory(email="priya@retain.example", username="priya@retain.example")
    sam = UserFactory(email="sam@retain.example", username="sam@retain.example")
    for user in (priya, sam):
        MembershipFactory(organization=org, user=user, role="csm")
    a1 = AccountFactory(organization=org, external_id="A1", owner=priya, touch_model="high", industry="Software")
    a2 = AccountFactory(organization=org, external_id="A2", owner=priya, touch_model="high", industry="Fintech")
    a3 = AccountFactory(organization=org, external_id="A3", owner=sam, touch_model="low", industry="Software")
    a4 = AccountFactory(organization=org, external_id="A4", owner=None, touch_model="tech", industry="Retail")
    Segment.all_orgs.filter(organization=org).delete()  # the default ARR segments: not part of this book
    Segment.all_orgs.create(organization=org, name="Big", position=0,
                            rules={"conditions": [{"field": "touch_model", "op": "eq", "value": "high"}]})  # fmt: skip
    Segment.all_orgs.create(organization=org, name="Software", position=1,
                            rules={"conditions": [{"field": "industry", "op": "eq", "value": "Software"}]})  # fmt: skip
    rows = [
        (a1, "nps", 10, at("2026-03-02")), (a1, "nps", 9, at("2026-03-10")), (a1, "nps", 6, at("2026-03-20")),
        (a2, "nps", 7, at("2026-03-05")), (a2, "nps", 3, at("2026-03-06")),
        (a3, "nps", 9, at("2026-03-01", 0, 0)), (a3, "nps", 9, at("2026-03-15")), (a3, "nps", 8, at("2026-03-16")),
        (a3, "nps", 0, at("2026-03-31", 23, 30)),
        (a4, "nps", 10, at("2026-03-25")),
        (a1, "nps", 0, at("2026-02-28", 23, 59)), (a1, "nps", 10, at("2026-04-01", 0, 0)),  # outside
        (a1, "csat", 5, at("2026-03-03")), (a1, "csat", 4, at("2026-03-04")), (a1, "csat", 3, at("2026-03-05")),
        (a2, "csat", 1, at("2026-03-07")),
        (a3, "ces", 7, at("2026-03-08")), (a3, "ces", 5, at("2026-03-09")), (a3, "ces", 4, at("2026-03-10")),
        (a4, "ces", 2, at("2026-03-11")),
    ]  # fmt: skip
    for account, kind, score, when in rows:
        SurveyResponse.all_orgs.create(organization=org, account=account, kind=kind, score=score, responded_at=when)
    return {"A1": a1, "A2": a2, "A3": a3, "A4": a4}


def nps_row(key, nps, n, p, pa, d):
    return {"key": key, "nps": nps, "responses": n, "promoters": p, "passives": pa, "detractors": d}


def test_nps_per_org_account_segment_and_csm(org, book):
    org_level = figures(org, "nps", START, END)
    assert org_level == {"nps": 20.0, "responses": 10, "promoters": 5, "passives": 2, "detractors": 3, "groups": []}
    assert figures(org, "nps", START, END, group_by="account")["groups"] == [
        nps_row("A1", 33.3, 3, 2, 0, 1), nps_row("A2", -50.0, 2, 0, 1, 1),
        nps_row("A3", 25.0, 4, 2, 1, 1), nps_row("A4", 100.0, 1, 1, 0, 0),
    ]  # fmt: skip
    assert figures(org, "nps", START, END, group_by="segment")["groups"] == [
        nps_row("Big", 0.0, 5, 2, 1, 2),
        nps_row("Software", 28.6, 7, 4, 1, 2),
        nps_row(None, 100.0, 1, 1, 0, 0),
    ]
    assert figures(org, "nps", START, END, group_by="owner")["groups"] == [
        nps_row("priya@retain.example", 0.0, 5, 2, 1, 2),
        nps_row("sam@retain.example", 25.0, 4, 2, 1, 1),
        nps_row(None, 100.0, 1, 1, 0, 0),
    ]
    assert figures(org, "nps", START, END, group_by="touch_model")["groups"] == [
        nps_row("high", 0.0, 5, 2, 1, 2),
        nps_row("low", 25.0, 4, 2, 1, 1),
        nps_row("tech", 100.0, 1, 1, 0, 0),
    ]
    # The top level never depends on group_by.
    assert {k: v for k, v in figures(org, "nps", START, END, group_by="segment").items() if k != "groups"} == {
        k: v for k, v in org_level.items() if k != "groups"
    }
    # Per account and per CSM through filters too.
    assert figures(org, "nps", START, END, account_id=book["A1"].pk)["nps"] == 33.3
    assert figures(org, "nps", START, END, account__owner__email="sam@retain.example")["nps"] == 25.0


def test_csat_and_ces(org, book):
    assert figures(org, "csat", START, END, group_by="account") == {
        "csat": 50.0, "responses": 4, "satisfied": 2,
        "groups": [{"key": "A1", "csat": 66.7, "responses": 3, "satisfied": 2},
                   {"key": "A2", "csat": 0.0, "responses": 1, "satisfied": 0}],
    }  # fmt: skip
    assert figures(org, "ces", START, END, group_by="account") == {
        "ces": 50.0, "responses": 4, "easy": 2,
        "groups": [{"key": "A3", "ces": 66.7, "responses": 3, "easy": 2},
                   {"key": "A4", "ces": 0.0, "responses": 1, "easy": 0}],
    }  # fmt: skip


def test_days_are_the_organizations_days(org, book):
    # 1 April (NY) holds only A1's 10 at midnight: the 23:30 answer of 31 March is not in it.
    april = figures(org, "nps", dt.date(2026, 4, 1), dt.date(2026, 4, 1))
    assert (april["responses"], april["nps"]) == (1, 100.0)
    assert figures(org, "nps", dt.date(2026, 2, 28), dt.date(2026, 2, 28))["detractors"] == 1


def test_rounding_is_half_away_from_zero_to_one_decimal():
    # 1 promoter in 16 answers: 6.25 → 6.3; 1 detractor in 16: −6.25 → −6.3; 2 of 3: 66.66… → 66.7.
    assert nps_figures([10] + [8] * 15)["nps"] == 6.3
    assert nps_figures([0] + [8] * 15)["nps"] == -6.3
    assert ces_figures([7, 7, 1])["ces"] == 66.7
    assert nps_figures([])["nps"] is None


# --- The endpoints (spec §8) --------------------------------------------------------------------------------


def test_nps_endpoint_shape_and_figures(api, org, book):
    body = api(org, "viewer").get("/api/v1/metrics/nps/", {"start": "2026-03-01", "end": "2026-03-31",
                                                           "group_by": "segment"}).json()  # fmt: skip
    assert body == {
        "nps": 20.0, "responses": 10, "promoters": 5, "passives": 2, "detractors": 3,
        "groups": [nps_row("Big", 0.0, 5, 2, 1, 2), nps_row("Software", 28.6, 7, 4, 1, 2),
                   nps_row(None, 100.0, 1, 1, 0, 0)],
    }  # fmt: skip
    assert list(body) == ["nps", "responses", "promoters", "passives", "detractors", "groups"]
    assert list(body["groups"][0]) == ["key", "nps", "responses", "promoters", "passives", "detractors"]


def test_csat_and_ces_endpoints(api, org, book):
    client = api(org, "csm")
    csat = client.get("/api/v1/metrics/csat/", {"start": "2026-03-01", "end": "2026-03-31"}).json()
    assert csat == {"csat": 50.0, "responses": 4, "satisfied": 2, "groups": []}
    ces = client.get("/api/v1/metrics/ces/", {"start": "2026-03-01", "end": "2026-03-31", "group_by": "owner"}).json()
    assert ces == {"ces": 50.0, "responses": 4, "easy": 2,
                   "groups": [{"key": "sam@retain.example", "ces": 66.7, "responses": 3, "easy": 2},
                              {"key": None, "ces": 0.0, "responses": 1, "easy": 0}]}  # fmt: skip


def test_null_when_there_is_no_response(api, org, book):
    client = api(org, "admin")
    for kind, extra in (("nps", {"promoters": 0, "passives": 0, "detractors": 0}), ("csat", {"satisfied": 0}),
                        ("ces", {"easy": 0})):  # fmt: skip
        body = client.get(f"/api/v1/metrics/{kind}/", {"start": "2030-01-01", "end": "2030-12-31",
                                                       "group_by": "account"}).json()  # fmt: skip
        assert body == {kind: None, "responses": 0, **extra, "groups": []}


def test_bad_parameters_are_400_with_their_field(api, org):
    client = api(org, "admin")
    bad = client.get("/api/v1/metrics/nps/", {"start": "2026-03-31", "end": "2026-03-01"})
    assert bad.status_code == 400 and "end" in bad.json()["errors"]
    assert "group_by" in client.get("/api/v1/metrics/nps/", {"start": "2026-03-01", "end": "2026-03-31",
                                                             "group_by": "product"}).json()["errors"]  # fmt: skip
    assert "start" in client.get("/api/v1/metrics/csat/", {"end": "2026-03-31"}).json()["errors"]


def test_another_organizations_responses_never_count(api, org, other_org, book):
    theirs = AccountFactory(organization=other_org, external_id="A1")
    SurveyResponse.all_orgs.create(
        organization=other_org, account=theirs, kind="nps", score=0, responded_at=at("2026-03-05")
    )
    body = api(org, "admin").get("/api/v1/metrics/nps/", {"start": "2026-03-01", "end": "2026-03-31"}).json()
    assert body["responses"] == 10
    other = api(other_org, "admin").get("/api/v1/metrics/nps/", {"start": "2026-03-01", "end": "2026-03-31"}).json()
    assert (other["responses"], other["nps"]) == (1, -100.0)


def test_the_widest_dates_are_answered_not_crashed(api, org, book):
    client = api(org, "admin")
    for start, end in (("0001-01-01", "9999-12-31"), ("9999-12-31", "9999-12-31")):
        response = client.get("/api/v1/metrics/nps/", {"start": start, "end": end, "group_by": "owner"})
        assert response.status_code == 200, response.content
    assert client.get("/api/v1/metrics/nps/", {"start": "0001-01-01", "end": "9999-12-31"}).json()["responses"] == 12


def test_a_negative_figure_that_rounds_to_zero_is_zero_not_minus_zero():
    import math

    nps = nps_figures([0] + [8] * 2000)["nps"]  # -100 / 2001 = -0.0499…
    assert nps == 0.0 and math.copysign(1, nps) == 1.0 and str(nps) == "0.0"
