"""Derived segment fields against an independent reference: every derived field × operator, with data on
and around each window's edge, in an organization whose days are not UTC days (America/New_York), on
whichever database the suite runs on.

The reference computes each account's derived values in plain Python from the records this test
inserted (the specs below, never read back from the database), with ``Fraction`` arithmetic and the
definitions of docs/segments.md written out again; it shares no code with the compiler or with the
apps' ``segment_fields`` modules. Each case compares the accounts the compiled SQL selects with the
accounts the reference selects, and a few promises are also stated by hand.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from accounts.models import Account, Membership, Organization
from accounts.segments import DERIVED, FIELDS, OPERATORS, compile_rules
from feedback.models import SurveyResponse
from health.models import HealthScore, Ticket, UsageMetric

from .factories import AccountFactory, ActivityFactory, TeamFactory
from .renewal_factories import contract_with_lines, renewal_for

pytestmark = pytest.mark.django_db

TODAY = date(2026, 3, 15)
ZONE = ZoneInfo("America/New_York")  # UTC−4 on these days (DST began 2026-03-08)


def day(offset: int) -> date:
    return TODAY + timedelta(days=offset)


def local(offset: int, hour: int, minute: int = 0) -> datetime:
    """An instant given in New York time, ``offset`` days from TODAY."""
    return datetime.combine(day(offset), datetime.min.time(), tzinfo=ZONE).replace(hour=hour, minute=minute)


# Each account: its owner, touches (type, instant), health deltas, usage rows (metric, day offset, value),
# tickets (priority, status, resolved), renewals (due offset, outcome), next_renewal_date offset and
# NPS/CSAT responses (kind, score, instant).
SPECS: list[dict[str, Any]] = [
    {
        "key": "a", "owner": None, "touches": [], "deltas": None, "usage": [], "tickets": [], "renewals": [],
        "next_renewal": None, "responses": [],
    },
    {
        "key": "b", "owner": "alice",
        "touches": [("call", local(-6, 23, 30)), ("note", local(-1, 10))],  # the note is not a touch
        "deltas": ("-12.5", "-30.0"),
        "usage": [("events", -29, "70"), ("events", -30, "60"), ("events", -59, "40"), ("events", -60, "999"),
                  ("active_users", 0, "10"), ("active_users", -45, "20")],
        "tickets": [("P1", "open", False), ("P1", "pending", False), ("P2", "open", False)],
        "renewals": [(30, ""), (10, "renewed")], "next_renewal": 200,
        "responses": [("nps", 10, local(-364, 0, 1)), ("nps", 3, local(-10, 12)), ("nps", 8, local(-365, 23, 59)),
                      ("csat", 1, local(-1, 9))],
    },
    {
        "key": "c", "owner": "bob",
        "touches": [("meeting", local(-45, 0, 30)), ("email", local(-90, 12))],
        "deltas": ("0.0", "5.5"),
        "usage": [("events", -1, "100"), ("events", -31, "100"), ("active_users", -2, "5"), ("active_users", -40, "4")],
        "tickets": [("P1", "open", True), ("P1", "solved", False), ("P1", "closed", True)],
        "renewals": [], "next_renewal": 90,
        "responses": [("nps", 9, local(-5, 8)), ("nps", 9, local(-6, 8)), ("nps", 6, local(-7, 8))],
    },
    {
        "key": "d", "owner": "carol",
        "touches": [("note", local(-2, 12))],  # only notes: never touched
        "deltas": (None, None),
        "usage": [("events", -5, "50")],  # no prior baseline
        "tickets": [("P1", "open", False)],
        "renewals": [(-3, "")],  # overdue
        "next_renewal": 120,
        "responses": [("nps", 7, local(-2, 12))],
    },
    {
        "key": "e", "owner": "bob",
        "touches": [("qbr", local(0, 0, 5)), ("training", local(-3, 12))],
        "deltas": ("7.0", None),
        "usage": [("events", -10, "0"), ("events", -40, "0"), ("active_users", -3, "30"), ("active_users", -33, "20")],
        "tickets": [], "renewals": [(0, "")], "next_renewal": None,
        "responses": [("nps", 0, local(-400, 12)), ("nps", 10, local(1, 12))],  # outside the window on both sides
    },
    {
        "key": "f", "owner": "alice",
        "touches": [("onsite", local(-45, 23, 59))],
        "deltas": ("-30.0", "-12.5"),
        "usage": [("events", 1, "500"), ("events", -15, "30"), ("events", -35, "40")],
        "tickets": [("P1", "open", False), ("P1", "open", False), ("P1", "open", False)],
        "renewals": [], "next_renewal": 45,
        "responses": [("nps", 10, local(-30, 12)), ("nps", 6, local(-30, 13))],
    },
]  # fmt: skip


# --- The reference ----------------------------------------------------------------------------------


def _local_day(instant: datetime) -> date:
    return instant.astimezone(ZONE).date()


def _window_days(offset: int) -> bool:
    return -364 <= offset <= 0


def derived_values(spec: dict[str, Any], teams: dict[str, int | None]) -> dict[str, Any]:
    touches = [when for kind, when in spec["touches"] if kind != "note"]
    last_touch = max(touches) if touches else None
    out: dict[str, Any] = {
        "team": teams.get(spec["owner"]) if spec["owner"] else None,
        "days_since_last_touch": (TODAY - _local_day(last_touch)).days if last_touch else None,
        "health_delta_7": Fraction(spec["deltas"][0]) if spec["deltas"] and spec["deltas"][0] else None,
        "health_delta_30": Fraction(spec["deltas"][1]) if spec["deltas"] and spec["deltas"][1] else None,
        "open_p1_tickets": sum(
            1 for p, status, resolved in spec["tickets"] if p == "P1" and status in ("open", "pending") and not resolved
        ),
    }
    for metric in ("events", "active_users"):
        rows = [(offset, Fraction(v)) for m, offset, v in spec["usage"] if m == metric]
        last = sum(v for offset, v in rows if -29 <= offset <= 0)
        prior_rows = [v for offset, v in rows if -59 <= offset <= -30]
        prior = sum(prior_rows)
        out[f"usage_trend_{metric}"] = (last - prior) * 100 / prior if prior_rows and prior != 0 else None
    open_dues = sorted(offset for offset, outcome in spec["renewals"] if not outcome)
    due = open_dues[0] if open_dues else spec["next_renewal"]
    out["days_to_renewal"] = due
    nps = [
        score
        for kind, score, when in spec["responses"]
        if kind == "nps" and _window_days((_local_day(when) - TODAY).days)
    ]
    out["nps"] = (
        Fraction(sum(1 for s in nps if s >= 9) - sum(1 for s in nps if s <= 6)) * 100 / len(nps) if nps else None
    )
    all_nps = [(when, score) for kind, score, when in spec["responses"] if kind == "nps"]
    out["nps_last_score"] = max(all_nps)[1] if all_nps else None
    return out


def _leaf(have: Any, op: str, raw: Any) -> bool:
    if op == "is_empty":
        return have is None
    if op == "in":
        return have is not None and have in [Fraction(str(v)) for v in raw]
    want = Fraction(str(raw))
    if op == "ne":
        return have is None or have != want
    if have is None:
        return False
    return {"eq": have == want, "gt": have > want, "gte": have >= want, "lt": have < want, "lte": have <= want}[op]


# --- Building the book --------------------------------------------------------------------------------


@pytest.fixture
def book(org, alice, bob, make_member):
    Organization.objects.filter(pk=org.pk).update(time_zone="America/New_York")
    org.refresh_from_db()
    carol = make_member(org, "csm", first_name="Carol").user  # no team
    red, blue = TeamFactory(organization=org, name="Red"), TeamFactory(organization=org, name="Blue")
    Membership.objects.for_org(org).filter(user=alice).update(team=red)
    Membership.objects.for_org(org).filter(user=bob).update(team=blue)
    people = {"alice": alice, "bob": bob, "carol": carol}
    teams = {"alice": red.pk, "bob": blue.pk, "carol": None}
    rows: dict[str, dict[str, Any]] = {}
    for spec in SPECS:
        account = AccountFactory(organization=org, name=f"Account {spec['key']}", owner=people.get(spec["owner"]))
        for kind, when in spec["touches"]:
            ActivityFactory(organization=org, account=account, type=kind, occurred_at=when)
        if spec["deltas"] is not None:
            d7, d30 = spec["deltas"]
            HealthScore.all_orgs.create(
                organization=org, account=account, score=Decimal("60"), color="yellow", computed_color="yellow",
                computed_at=datetime(2026, 3, 15, tzinfo=UTC),
                delta_7=Decimal(d7) if d7 else None, delta_30=Decimal(d30) if d30 else None,
            )  # fmt: skip
        UsageMetric.all_orgs.bulk_create(
            UsageMetric(organization=org, account=account, metric=m, date=day(offset), value=Decimal(v))
            for m, offset, v in spec["usage"]
        )
        for i, (priority, status, resolved) in enumerate(spec["tickets"]):
            Ticket.all_orgs.create(
                organization=org, account=account, external_id=f"T-{spec['key']}-{i}", priority=priority,
                status=status, opened_at=local(-20, 12), resolved_at=local(-1, 12) if resolved else None,
            )  # fmt: skip
        for offset, outcome in spec["renewals"]:
            contract = contract_with_lines(org, account=account, start=day(offset - 365), end=day(offset))
            renewal_for(contract, due_date=day(offset), outcome=outcome)
        Account.all_orgs.filter(pk=account.pk).update(
            next_renewal_date=day(spec["next_renewal"]) if spec["next_renewal"] is not None else None
        )
        for i, (kind, score, when) in enumerate(spec["responses"]):
            SurveyResponse.all_orgs.create(
                organization=org,
                account=account,
                kind=kind,
                score=score,
                responded_at=when,
                external_id=f"R{i}" + spec["key"],
            )
        rows[spec["key"]] = derived_values(spec, teams)
    return org, rows, teams


def selected(org: Organization, rules: dict[str, Any]) -> set[str]:
    condition = compile_rules(rules, organization=org, today=TODAY)
    return {
        n.removeprefix("Account ")
        for n in Account.objects.for_org(org).filter(condition).values_list("name", flat=True)
    }


def expected(rows: dict[str, dict[str, Any]], field: str, op: str, value: Any) -> set[str]:
    return {key for key, values in rows.items() if _leaf(values[field], op, value)}


def one(field: str, op: str, value: Any = None) -> dict[str, Any]:
    condition = {"field": field, "op": op} if op == "is_empty" else {"field": field, "op": op, "value": value}
    return {"match": "all", "conditions": [condition]}


# Values per field: at, below and above what the accounts hold, window edges included. ``team`` values
# are team names resolved to ids in the test.
VALUES: dict[str, list[Any]] = {
    "team": ["Red", "Blue"],
    "days_since_last_touch": [0, 1, 5, 6, 7, 45, 46, "44", -1],
    "health_delta_7": ["-12.5", "-30", 0, "7.0", "-12.4"],
    "health_delta_30": ["-30", "5.5", "-12.5", 0],
    "usage_trend_events": ["-30", -30, "-29.99", "-30.01", "0", "-25", "-25.01", "25"],
    "usage_trend_active_users": ["-50", "25", "50", "-50.01", 0],
    "open_p1_tickets": [0, 1, 2, 3, "4"],
    "days_to_renewal": [-3, -4, 0, 30, 45, 90, 89, 91, 200, 10],
    "nps": ["0", "-33.33", "33.33", "33.34", "100", "-100", 0, "-34"],
    "nps_last_score": [3, 6, 7, 8, 9, 10],
}

#: Path fields registered by apps above accounts whose values this file holds (the column oracle leaves them here).
COVERED = set(VALUES)


def _resolve(field: str, value: Any, teams: dict[str, Any]) -> Any:
    if field == "team":
        return {"Red": teams["alice"], "Blue": teams["bob"]}[value]
    return value


def _cases() -> list[tuple[str, str]]:
    return [(field, op) for field in VALUES for op in sorted(OPERATORS[FIELDS[field][1]])]


def test_the_table_covers_every_derived_field_and_operator():
    wanted = {(field, op) for field in DERIVED for op in OPERATORS[FIELDS[field][1]]}
    wanted |= {(field, op) for field in ("health_delta_7", "health_delta_30") for op in OPERATORS["number"]}
    assert wanted <= set(_cases())


@pytest.mark.parametrize(("field", "op"), _cases())
def test_every_derived_field_and_operator_selects_what_the_reference_selects(book, field, op):
    org, rows, teams = book
    values = [_resolve(field, v, teams) for v in VALUES[field]]
    if op == "is_empty":
        cases = [(None, one(field, op))]
    elif op == "in":
        cases = [([v], one(field, op, [v])) for v in values] + [(values[:2], one(field, op, values[:2]))]
    else:
        cases = [(v, one(field, op, v)) for v in values]
    for value, rules in cases:
        assert selected(org, rules) == expected(rows, field, op, value), rules


# --- Promises stated by hand ------------------------------------------------------------------------------


def test_reference_values_are_what_the_definitions_say(book):
    _, rows, _ = book
    assert rows["b"]["days_since_last_touch"] == 6  # 23:30 New York on day −6 is day −5 in UTC
    assert rows["d"]["days_since_last_touch"] is None  # notes only
    assert rows["b"]["usage_trend_events"] == -30  # (70 − (60 + 40)) / 100: day −30 is prior, day −60 outside
    assert rows["e"]["usage_trend_events"] is None  # a prior total of 0 is no baseline
    assert rows["b"]["open_p1_tickets"] == 2 and rows["c"]["open_p1_tickets"] == 0
    assert rows["b"]["days_to_renewal"] == 30 and rows["d"]["days_to_renewal"] == -3
    assert rows["b"]["nps"] == 0  # 10 (day −364) and 3 count; 8 on day −365 is outside
    assert rows["c"]["nps"] == Fraction(100, 3)


def test_derived_fields_combine_in_nested_groups(book):
    org, rows, _ = book
    rules = {
        "match": "any",
        "conditions": [
            {"all": [one("open_p1_tickets", "gte", 2)["conditions"][0], one("nps", "lt", 50)["conditions"][0]]},
            {
                "all": [
                    one("days_to_renewal", "lte", 0)["conditions"][0],
                    one("days_since_last_touch", "lt", 1)["conditions"][0],
                ]
            },
        ],
    }  # fmt: skip
    assert selected(org, rules) == {"b", "f", "e"}


def test_never_touched_accounts_are_found_with_is_empty_not_with_a_comparison(book):
    org, _, _ = book
    assert selected(org, one("days_since_last_touch", "gt", 30)) == {"c", "f"}
    never = {"match": "any", "conditions": [{"field": "days_since_last_touch", "op": "gt", "value": 30},
                                             {"field": "days_since_last_touch", "op": "is_empty"}]}  # fmt: skip
    assert selected(org, never) == {"a", "c", "d", "f"}


def test_another_organizations_rows_never_count(book, other_org):
    org, _, _ = book
    stranger = AccountFactory(organization=other_org, name="Account z")
    Ticket.all_orgs.create(organization=other_org, account=stranger, external_id="Z", priority="P1", status="open",
                           opened_at=local(-1, 12))  # fmt: skip
    assert selected(org, one("open_p1_tickets", "gte", 1)) == {"b", "d", "f"}
    assert selected(other_org, one("open_p1_tickets", "gte", 1)) == {"z"}


def test_day_counts_beyond_range_are_refused():
    from accounts.segments import rule_problems

    assert rule_problems(one("days_to_renewal", "lt", 100000)) == [
        "rules.conditions.0.value: 100000 is out of range (the absolute value must be below 100000)"
    ]
    assert rule_problems(one("days_to_renewal", "lt", "1.5")) == [
        "rules.conditions.0.value: '1.5' is not a whole number"
    ]
    assert rule_problems(one("nps", "gt", "1.234")) == [
        "rules.conditions.0.value: '1.234' has more than 2 decimal places"
    ]
