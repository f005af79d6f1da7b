"""Business reviews (QBR / EBR) and their value report (issue 15, item 3): golden figures on hand-built data,
closing (activity once, objectives, snapshot frozen, event), the PDF from the page and the command read back
with pypdf, and who may do what.

The clock is frozen at 2026-10-15 12:00 UTC, so the default period is the last quarter, 2026-07-01 – 2026-09-30
(the organization's fiscal year starts in January, time zone UTC).
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.core.management import call_command
from pypdf import PdfReader

from accounts.models import Activity, Objective, SuccessPlan
from cs_platform.models import DomainEvent
from feedback.models import SurveyResponse
from health.models import KeyFeature
from value.choices import ReviewStatus
from value.models import BusinessReview
from value.report import build_report, review_report
from value.reviews import NextObjective, close_review, default_period, start_review

from .factories import AccountFactory, ObjectiveFactory, SuccessPlanFactory
from .renewal_factories import contract_with_lines, renewal_for
from .signal_factories import (
    HealthScoreFactory,
    HealthSnapshotFactory,
    TicketFactory,
    UsageMetricFactory,
    components,
)

NOW = dt.datetime(2026, 10, 15, 12, 0, tzinfo=dt.UTC)
START, END = dt.date(2026, 7, 1), dt.date(2026, 9, 30)
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def at(day: str, hour: int = 10) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


def nps(org, account, score: int, day: str) -> None:
    SurveyResponse.all_orgs.create(organization=org, account=account, kind="nps", score=score, responded_at=at(day))


def peer(org, *, health, events, tickets, nps_score=None, touch="high"):
    """A peer account with 10 seats, a health score, ``events`` in the period, ``tickets`` opened in it."""
    account = AccountFactory(organization=org, touch_model=touch)
    contract_with_lines(org, account=account, seats=10)
    if health is not None:
        HealthScoreFactory(organization=org, account=account, score=Decimal(health))
    if events:
        UsageMetricFactory(organization=org, account=account, date=dt.date(2026, 8, 1), metric="events", value=events)
    for i in range(tickets):
        TicketFactory(organization=org, account=account, opened_at=at(f"2026-08-{10 + i:02d}"))
    if nps_score is not None:
        nps(org, account, nps_score, "2026-08-20")
    return account


@pytest.fixture
def story(org, bob):
    """One high-touch account with a quarter of data, a previous review, and five high-touch peers."""
    account = AccountFactory(organization=org, owner=bob, touch_model="high", name="Initech")
    contract = contract_with_lines(org, account=account, seats=40)  # 2026-01-01 – 2026-12-31: 40 seats on 09-30
    renewal_for(contract, forecast_category="likely", probability=70)

    # Usage: two readings outside the period (06-30, 10-01) must not count.
    for day, users, events in [
        ("2026-06-30", 99, 999), ("2026-07-05", 20, 100), ("2026-07-20", 25, 150), ("2026-08-10", 30, 300),
        ("2026-09-15", 28, 250), ("2026-10-01", 99, 999),
    ]:  # fmt: skip
        d = dt.date.fromisoformat(day)
        UsageMetricFactory(organization=org, account=account, date=d, metric="active_users", value=users)
        UsageMetricFactory(organization=org, account=account, date=d, metric="events", value=events)
    KeyFeature.all_orgs.create(organization=org, event_name="report_exported", label="Report export")
    for day, users in [("2026-08-10", 12), ("2026-09-15", 9)]:
        UsageMetricFactory(
            organization=org, account=account, date=dt.date.fromisoformat(day),
            metric="feature_users:report_exported", value=users,
        )  # fmt: skip

    # Health: month-end scores, and the latest snapshot (10-10) that explains today's 75.0.
    for day, comps in [
        ("2026-07-31", {"adoption": 80.0, "support": 40.0}),  # 60.0
        ("2026-08-15", {"adoption": 90.0, "support": 50.0}),  # 70.0, not August's last
        ("2026-08-31", {"adoption": 70.0, "support": 50.0}),  # 60.0
        ("2026-10-10", {"adoption": 90.0, "support": 60.0}),  # 75.0
    ]:
        HealthSnapshotFactory(
            organization=org, account=account, date=dt.date.fromisoformat(day), components=components(comps)
        )
    HealthScoreFactory(organization=org, account=account, score=Decimal("75.0"))

    # Support: opened in the period 07-10 (P1, solved 07-12) and 08-01 (P3, open); 06-20 opened before but
    # resolved 07-02 (resolved in the period); 10-02 opened after (P1, pending: open now, not in the period).
    TicketFactory(organization=org, account=account, opened_at=at("2026-07-10"), priority="P1", status="solved",
                  resolved_at=at("2026-07-12"))  # fmt: skip
    TicketFactory(organization=org, account=account, opened_at=at("2026-08-01"), priority="P3", status="open")
    TicketFactory(organization=org, account=account, opened_at=at("2026-06-20"), priority="P2", status="solved",
                  resolved_at=at("2026-07-02"))  # fmt: skip
    TicketFactory(organization=org, account=account, opened_at=at("2026-10-02"), priority="P1", status="pending")

    # NPS in the period: 10, 9 (promoters), 7 (passive), 3 (detractor); 0 on 10-05 is after it.
    for score, day in [(10, "2026-07-03"), (9, "2026-08-03"), (7, "2026-09-03"), (3, "2026-09-29"), (0, "2026-10-05")]:
        nps(org, account, score, day)

    plan = SuccessPlanFactory(organization=org, account=account)
    ObjectiveFactory(
        organization=org, plan=plan, title="Cut first-response time", customer_measure="Median first response (h)",
        baseline="9", target="4", current="6", measured_on=dt.date(2026, 9, 28), progress=60, status="on_track",
        due_date=dt.date(2026, 12, 31),
    )  # fmt: skip
    dashboard = ObjectiveFactory(
        organization=org, plan=plan, title="Launch executive dashboard", customer_measure="Dashboards in use",
        baseline="0", target="3", current="2", progress=66, status="on_track", due_date=dt.date(2026, 9, 30),
    )  # fmt: skip
    BusinessReview.all_orgs.create(
        organization=org, account=account, period_start=dt.date(2026, 4, 1), period_end=dt.date(2026, 6, 30),
        status="closed", held_on=dt.date(2026, 7, 10), summary="Q2 review",
        snapshot={"next_objectives": [
            {"id": dashboard.pk, "title": "Launch executive dashboard", "target": "3"},
            {"id": 987654, "title": "Objective removed since", "measure": "", "baseline": "1", "target": "2",
             "due_date": None},
        ]},
    )  # fmt: skip

    # Peers (high touch, 10 seats each). Health 50..90; events 100..1000 → 10..100 per seat; tickets 1,0,2,0,3
    # → 10, 0, 20, 0, 30 per 100 seats; NPS from three of them only.
    peers = [
        peer(org, health="50", events=100, tickets=1, nps_score=10),
        peer(org, health="60", events=200, tickets=0, nps_score=0),
        peer(org, health="70", events=300, tickets=2, nps_score=8),
        peer(org, health="80", events=400, tickets=0),
        peer(org, health="90", events=1000, tickets=3),
    ]
    # Not peers: a churned high-touch account and a low-touch one (their figures would move every median).
    gone = peer(org, health="1", events=1, tickets=9, nps_score=0)
    gone.churned_at = dt.date(2026, 5, 1)
    gone.save()
    peer(org, health="2", events=2, tickets=9, nps_score=0, touch="low")
    return account, peers


def test_default_period_is_the_last_full_quarter(org):
    assert default_period(org) == (START, END)
    org.fiscal_year_start_month = 2  # quarters Feb–Apr, May–Jul, Aug–Oct: on 10-15 the last full one is May–Jul
    assert default_period(org) == (dt.date(2026, 5, 1), dt.date(2026, 7, 31))


def test_report_figures_golden(org, story):
    account, _peers = story
    report = build_report(org, account, period_start=START, period_end=END)

    assert report["period"] == {"start": "2026-07-01", "end": "2026-09-30"}
    assert [(o["title"], o["baseline"], o["target"], o["current"], o["progress"]) for o in report["objectives"]] == [
        ("Launch executive dashboard", "0", "3", "2", 66),  # due 09-30 first
        ("Cut first-response time", "9", "4", "6", 60),
    ]

    usage = report["usage"]
    # Peak daily active users per month (Jul max(20, 25) = 25) and Σ events (Jul 100 + 150 = 250).
    assert usage["months"] == [
        {"month": "2026-07", "active_users": 25, "events": 250},
        {"month": "2026-08", "active_users": 30, "events": 300},
        {"month": "2026-09", "active_users": 28, "events": 250},
    ]
    # 40 seats; peak 30 → 30 / 40 = 75.0 %; events 250 + 300 + 250 = 800.
    assert (usage["seats"], usage["peak_active_users"], usage["utilisation"], usage["events"]) == (40, 30, 75.0, 800)
    assert usage["key_features"] == [{"label": "Report export", "event": "report_exported", "peak_users": 12}]

    health = report["health"]
    assert (health["score"], health["color"]) == (75.0, "green")
    # The 10-10 snapshot: adoption 90 and support 60 at half each; support loses 0.5 × 40 = 20 points.
    assert health["dragging"] == {"name": "Support", "score": 60.0, "lost_points": 20.0}
    assert [(c["name"], c["score"], c["weight"]) for c in health["components"]] == [
        ("Adoption", 90.0, 50.0), ("Support", 60.0, 50.0),
    ]  # fmt: skip
    # Month-end scores: July 60.0; August's last (08-31) is 60.0, not 08-15's 70.0; none in September.
    assert [(t["month"], t["score"]) for t in health["trend"]] == [
        ("2026-07", 60.0),
        ("2026-08", 60.0),
        ("2026-09", None),
    ]

    # Opened 07-10 and 08-01; resolved 07-12 and 07-02; one P1 in the period; open now: 08-01 and 10-02.
    assert report["support"] == {"opened": 2, "resolved": 2, "p1": 1, "open_now": 2}
    # 2 promoters, 1 passive, 1 detractor of 4: (2 − 1) / 4 = 25.0.
    assert report["nps"] == {"nps": 25.0, "responses": 4, "promoters": 2, "passives": 1, "detractors": 1}
    assert report["renewal"]["due_date"] == "2026-12-31"
    assert (report["renewal"]["forecast_category"], report["renewal"]["probability"]) == ("likely", 70)

    previous = report["previous"]
    assert previous["held_on"] == "2026-07-10"
    assert [(o["title"], o["current"], o["status"]) for o in previous["objectives"]] == [
        ("Launch executive dashboard", "2", "on_track"),
        ("Objective removed since", "", "removed"),
    ]


def test_peer_benchmark_is_the_median_of_the_peers_and_names_none(org, story):
    account, peers = story
    bench = build_report(org, account, period_start=START, period_end=END)["benchmark"]
    # The five live high-touch accounts; the churned one and the low-touch one are not peers.
    assert (bench["group_kind"], bench["group"], bench["peers"], bench["shown"]) == (
        "touch_model", "High touch", 5, True,
    )  # fmt: skip
    measures = {m["key"]: (m["account"], m["median"], m["peers_with_data"]) for m in bench["measures"]}
    # Health 50, 60, 70, 80, 90 → median 70; the account's 75.
    assert measures["health_score"] == (75.0, 70.0, 5)
    # Events per seat 10, 20, 30, 40, 100 → 30; the account 800 / 40 = 20.
    assert measures["events_per_seat"] == (20.0, 30.0, 5)
    # Tickets per 100 seats 10, 0, 20, 0, 30 → sorted 0, 0, 10, 20, 30 → 10; the account 2 × 100 / 40 = 5.
    assert measures["tickets_per_100_seats"] == (5.0, 10.0, 5)
    # NPS from three peers only (100, −100, 0): fewer than 5 → no median; the account's own 25.
    assert measures["nps"] == (25.0, None, 3)
    text = repr(bench)
    assert not any(p.name in text or (p.external_id or "") in text for p in peers)


def test_benchmark_hidden_below_five_peers(org, story):
    account, peers = story
    peers[0].churned_at = dt.date(2026, 9, 1)  # 4 live peers left
    peers[0].save()
    bench = build_report(org, account, period_start=START, period_end=END)["benchmark"]
    assert (bench["peers"], bench["shown"], bench["measures"]) == (4, False, [])


def test_benchmark_uses_the_first_segment_when_the_account_is_in_one(org, story):
    from accounts.models import Segment, SegmentMembership

    account, peers = story
    segment = Segment.all_orgs.create(organization=org, name="Strategic", rules={"match": "all", "conditions": []})
    for member in [account, *peers[:3]]:
        SegmentMembership.all_orgs.create(organization=org, segment=segment, account=member, entered_at=NOW)
    bench = build_report(org, account, period_start=START, period_end=END)["benchmark"]
    assert (bench["group_kind"], bench["group"], bench["peers"], bench["shown"]) == ("segment", "Strategic", 3, False)


def test_close_records_once_sets_objectives_and_freezes_the_report(org, story, bob):
    from accounts.services import Actor

    account, _peers = story
    actor = Actor(organization=org, role="csm", user=bob)
    review = start_review(org, account, by=actor)
    assert (review.period_start, review.period_end, review.status) == (START, END, ReviewStatus.OPEN)
    live_before = review_report(org, review)

    closed = close_review(
        org, review, by=actor, held_on=dt.date(2026, 10, 14), summary="Agreed to expand to finance.",
        next_review_on=dt.date(2027, 1, 15),
        next_objectives=[
            NextObjective(title="Expand to finance", measure="Finance users", baseline="0", target="25",
                          due_date=dt.date(2027, 1, 15)),
            NextObjective(title="Weekly exec dashboard", target="3"),
        ],
    )  # fmt: skip
    assert closed.status == ReviewStatus.CLOSED and closed.closed_by == bob
    activities = Activity.all_orgs.filter(organization=org, account=account, type="qbr")
    assert activities.count() == 1
    activity = activities.get()
    assert (closed.activity_id, activity.summary, activity.author, activity.occurred_at.date()) == (
        activity.pk, "Agreed to expand to finance.", bob, dt.date(2026, 10, 14),
    )  # fmt: skip
    plan = SuccessPlan.all_orgs.get(organization=org, account=account)
    assert (plan.last_reviewed_at, plan.next_review_at) == (dt.date(2026, 10, 14), dt.date(2027, 1, 15))
    created = Objective.all_orgs.filter(plan=plan, title__in=["Expand to finance", "Weekly exec dashboard"])
    assert sorted(created.values_list("title", "baseline", "target", "status")) == [
        ("Expand to finance", "0", "25", "not_started"), ("Weekly exec dashboard", "", "3", "not_started"),
    ]  # fmt: skip
    # The snapshot is the report as presented: before the new objectives joined the plan.
    frozen = closed.snapshot["report"]
    assert frozen["objectives"] == live_before["objectives"] and frozen["support"] == live_before["support"]
    assert [o["title"] for o in closed.snapshot["next_objectives"]] == ["Expand to finance", "Weekly exec dashboard"]
    (event,) = DomainEvent.all_orgs.filter(organization=org, name="business_review.closed")
    assert event.payload["activity"] == activity.pk and event.payload["next_review_on"] == "2027-01-15"

    # Closing again changes nothing.
    with pytest.raises(ValidationError):
        close_review(org, closed, by=actor, held_on=dt.date(2026, 10, 14), summary="again")
    assert activities.count() == 1

    # Later data does not move a closed report.
    TicketFactory(organization=org, account=account, opened_at=at("2026-09-01"), priority="P1")
    Objective.all_orgs.filter(plan=plan, title="Cut first-response time").update(current="4", progress=100)
    nps(org, account, 0, "2026-09-10")
    closed.refresh_from_db()
    assert review_report(org, closed) == frozen
    live = build_report(org, account, period_start=START, period_end=END)
    assert live["support"]["opened"] == 3 and live["nps"]["responses"] == 5

    # The next review's report shows the outcomes of the objectives this one set.
    nxt = start_review(org, account, by=actor, period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 12, 31))
    assert [o["title"] for o in review_report(org, nxt)["previous"]["objectives"]] == [
        "Expand to finance", "Weekly exec dashboard",
    ]  # fmt: skip


def test_close_validates_dates_and_summary(org, story, bob):
    from accounts.services import Actor

    account, _ = story
    actor = Actor(organization=org, role="csm", user=bob)
    review = start_review(org, account, by=actor)
    with pytest.raises(ValidationError) as err:
        close_review(org, review, by=actor, held_on=dt.date(2026, 6, 1), summary="", next_review_on=dt.date(2026, 5, 1))
    assert set(err.value.message_dict) == {"summary", "held_on", "next_review_on"}
    with pytest.raises(ValidationError):
        start_review(org, account, by=actor, period_start=END, period_end=START)
    assert not Activity.all_orgs.filter(account=account, type="qbr").exists()


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def assert_measures_in(text: str) -> None:
    flat = " ".join(text.split())
    for needle in ["Initech", "2026-07-01", "2026-09-30", "Cut first-response time", "Launch executive dashboard",
                   "Success measures", "Baseline", "Target", "Current", "60%", "66%", "Peer median", "NPS", "25",
                   "Renewal date", "2026-12-31", "Health"]:  # fmt: skip
        assert needle in flat, needle


def test_pdf_from_the_page_and_the_command(client, org, story, bob, tmp_path):
    from accounts.services import Actor

    account, _ = story
    review = start_review(org, account, by=Actor(organization=org, role="csm", user=bob))
    client.force_login(bob)
    response = client.get(f"/o/{org.slug}/accounts/{account.pk}/reviews/{review.pk}/report.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="qbr-initech-2026-09-30.pdf"'
    assert_measures_in(pdf_text(response.content))

    out = tmp_path / "qbr.pdf"
    call_command("qbr_report", org=org.slug, account=account.external_id, output=str(out), stdout=io.StringIO())
    assert_measures_in(pdf_text(out.read_bytes()))
    # By id and an explicit review too.
    call_command(
        "qbr_report", org=org.slug, account=str(account.pk), review=review.pk, output=str(out), stdout=io.StringIO()
    )
    assert "Initech" in pdf_text(out.read_bytes())


def test_the_page_renders_the_report_and_closes_it(client, org, story, bob):
    account, _ = story
    client.force_login(bob)
    base = f"/o/{org.slug}/accounts/{account.pk}/reviews/"
    page = client.get(base)
    assert page.status_code == 200 and 'value="2026-07-01"' in page.content.decode()
    response = client.post(base, {"kind": "qbr", "period_start": "2026-07-01", "period_end": "2026-09-30"})
    review = BusinessReview.all_orgs.get(organization=org, account=account, status="open")
    assert response.status_code == 302 and response["Location"] == f"{base}{review.pk}/"
    html = client.get(f"{base}{review.pk}/").content.decode()
    for needle in ["Cut first-response time", "Download PDF", "Peer median", "<svg", "75.0", "Close the review"]:
        assert needle in html, needle
    form = {
        "held_on": "2026-10-14", "summary": "Went well", "next_review_on": "2027-01-14",
        "next-TOTAL_FORMS": "3", "next-INITIAL_FORMS": "0", "next-MIN_NUM_FORMS": "0", "next-MAX_NUM_FORMS": "10",
        "next-0-title": "Expand to finance", "next-0-target": "25", "next-1-title": "", "next-2-title": "",
    }  # fmt: skip
    response = client.post(f"{base}{review.pk}/", form)
    assert response.status_code == 302
    review.refresh_from_db()
    assert review.status == "closed" and Activity.all_orgs.filter(account=account, type="qbr").count() == 1
    # A second submit (double click, another tab) closes nothing twice.
    assert client.post(f"{base}{review.pk}/", form).status_code == 302
    assert Activity.all_orgs.filter(account=account, type="qbr").count() == 1
    html = client.get(f"{base}{review.pk}/").content.decode()
    assert "What was agreed" in html and "Close the review" not in html and "Expand to finance" in html
    # Account 360 links to the reviews.
    assert f"{base}{review.pk}/" in client.get(f"/o/{org.slug}/accounts/{account.pk}/").content.decode()


def test_close_form_errors_are_a_400_and_nothing_is_written(client, org, story, bob):
    from accounts.services import Actor

    account, _ = story
    review = start_review(org, account, by=Actor(organization=org, role="csm", user=bob))
    client.force_login(bob)
    form = {"held_on": "2026-06-01", "summary": "x", "next-TOTAL_FORMS": "1", "next-INITIAL_FORMS": "0",
            "next-0-target": "25"}  # fmt: skip
    response = client.post(f"/o/{org.slug}/accounts/{account.pk}/reviews/{review.pk}/", form)
    assert response.status_code == 400
    assert "Give the objective a title" in response.content.decode()
    review.refresh_from_db()
    assert review.status == "open" and not Activity.all_orgs.filter(account=account, type="qbr").exists()


@pytest.mark.parametrize(("role", "owner", "can_write"), [
    ("admin", False, True), ("leader", False, False), ("csm", True, True), ("csm", False, False),
    ("viewer", False, False),
])  # fmt: skip
def test_roles_on_the_pages(client, org, story, make_member, role, owner, can_write):
    account, _ = story
    user = make_member(org, role).user
    if owner:
        account.owner = user
        account.save()
    review = BusinessReview.all_orgs.create(organization=org, account=account, period_start=START, period_end=END)
    client.force_login(user)
    base = f"/o/{org.slug}/accounts/{account.pk}/reviews/"
    assert client.get(base).status_code == 200
    assert client.get(f"{base}{review.pk}/").status_code == 200
    assert client.get(f"{base}{review.pk}/report.pdf").status_code == 200
    started = client.post(base, {"kind": "qbr", "period_start": "2026-07-01", "period_end": "2026-09-30"})
    assert started.status_code == (302 if can_write else 403)
    closed = client.post(f"{base}{review.pk}/", {"held_on": "2026-10-14", "summary": "x", "next-TOTAL_FORMS": "0",
                                                 "next-INITIAL_FORMS": "0"})  # fmt: skip
    assert closed.status_code == (302 if can_write else 403)


def test_another_organization_cannot_see_the_review(client, org, other_org, story, charlie):
    account, _ = story
    review = BusinessReview.all_orgs.create(organization=org, account=account, period_start=START, period_end=END)
    client.force_login(charlie)
    assert client.get(f"/o/{org.slug}/accounts/{account.pk}/reviews/{review.pk}/").status_code == 404
    assert client.get(f"/o/{other_org.slug}/accounts/{account.pk}/reviews/{review.pk}/").status_code == 404
    assert client.get(f"/o/{other_org.slug}/accounts/{account.pk}/reviews/{review.pk}/report.pdf").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_demo_seeds_closed_reviews_with_frozen_reports_and_outcomes(tmp_path):
    """seed_demo (value.demo_reviews): high-touch accounts with closed QBRs whose frozen reports hold figures,
    the later one showing the outcomes of the objectives the earlier one set; objectives carry readings;
    replacing the demo replaces its reviews. The PDF of a demo account comes out of the command."""
    from accounts.demo import seed_demo

    org = seed_demo(slug="demo", accounts=120, seed=3, today=dt.date(2026, 10, 15)).organization
    reviews = BusinessReview.all_orgs.filter(organization=org)
    closed = reviews.filter(status="closed").select_related("account", "activity")
    assert reviews.count() >= 4 and closed.count() >= 2 and reviews.filter(status="open").exists()
    for review in closed:
        assert review.account.touch_model == "high" and review.activity.type in ("qbr", "ebr")
        report = review.snapshot["report"]
        assert report["account"]["name"] == review.account.name and report["objectives"]
    latest = closed.filter(period_end=dt.date(2026, 9, 30)).first()
    assert latest is not None
    outcomes = latest.snapshot["report"]["previous"]["objectives"]
    assert len(outcomes) == 2 and all(o["current"] for o in outcomes)
    assert Objective.all_orgs.filter(organization=org).exclude(current="").exists()
    out = tmp_path / "demo.pdf"
    call_command("qbr_report", org="demo", account=latest.account.external_id, output=str(out), stdout=io.StringIO())
    text = " ".join(pdf_text(out.read_bytes()).split())
    assert latest.account.name in text and "Success measures" in text
    measures = [o["title"] for o in latest.snapshot["report"]["objectives"]]
    assert measures and all(title in text for title in measures), measures
    # The same PDF from the review page, as the demo's admin.
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(email="admin@demo.retain.local"))
    response = client.get(f"/o/demo/accounts/{latest.account.pk}/reviews/{latest.pk}/report.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    page_text = " ".join(pdf_text(response.content).split())
    assert all(title in page_text for title in measures)

    before = sorted(reviews.values_list("account__external_id", "period_end", "status"))
    seed_demo(slug="demo", accounts=120, seed=3, today=dt.date(2026, 10, 15))
    assert sorted(reviews.values_list("account__external_id", "period_end", "status")) == before


def test_report_query_count_does_not_grow_with_the_peers_or_the_data(org, story):
    """A fixed number of queries per report, whatever the number of peers or rows (no query per peer)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    account, _ = story
    with CaptureQueriesContext(connection) as small:
        build_report(org, account, period_start=START, period_end=END)
    for i in range(10):
        peer(org, health=str(40 + i), events=50 * (i + 1), tickets=i % 3, nps_score=i)
    with CaptureQueriesContext(connection) as large:
        report = build_report(org, account, period_start=START, period_end=END)
    assert report["benchmark"]["peers"] == 15
    assert len(large.captured_queries) == len(small.captured_queries) <= 25, len(small.captured_queries)


def test_report_at_the_ends_of_the_calendar(org, account):
    """A period at the calendar's edges (the API takes any dates) still gives a report, not a 500."""
    for start, end in [(dt.date(1, 1, 1), dt.date(1, 3, 31)), (dt.date(9999, 10, 1), dt.date(9999, 12, 31))]:
        report = build_report(org, account, period_start=start, period_end=end)
        assert [m["month"] for m in report["usage"]["months"]][-1] == end.strftime("%Y-%m")
