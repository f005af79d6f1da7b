"""The bulk recompute (health.services.recompute_health): snapshots, latest scores, overrides, webhooks,
segment bindings and a constant number of queries."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Segment
from cs_platform.events import dispatch
from feedback.models import SurveyResponse
from health.models import CsmPulse, HealthOverride, HealthScore, HealthSnapshot, Scorecard
from health.services import recompute_health, save_scorecard_version
from playbooks.models import WebhookDelivery, WebhookEndpoint
from playbooks.services import generate_secret

from .factories import AccountFactory, ContactFactory

AS_OF = dt.date(2026, 11, 20)


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def pulse(account, color: str, day: dt.date = AS_OF) -> None:
    CsmPulse.all_orgs.create(organization=account.organization, account=account, color=color, created_at=at(day))


def nps(account, score: int, day: dt.date = AS_OF) -> None:
    SurveyResponse.all_orgs.create(
        organization=account.organization, account=account, kind="nps", score=score, responded_at=at(day)
    )


def latest(account) -> HealthScore:
    return HealthScore.objects.for_org(account.organization_id).get(account=account)


def test_one_snapshot_per_account_per_day_and_rerun_updates(org):
    green = AccountFactory(organization=org)
    red = AccountFactory(organization=org)
    pulse(green, "green")
    pulse(red, "red")
    result = recompute_health(org, as_of=AS_OF, latest=True)
    assert (result.accounts, result.scored) == (2, 2)
    recompute_health(org, as_of=AS_OF, latest=True)
    snapshots = HealthSnapshot.objects.for_org(org).filter(date=AS_OF)
    assert snapshots.count() == 2
    assert snapshots.get(account=green).score == Decimal("100.0")
    assert snapshots.get(account=red).color == "red"
    # The same day, new data: the row is updated, not duplicated.
    nps(red, 10)  # 10 → NPS 100 → 100 points; pulse red 0 → weights 15 : 10 → 60.0
    recompute_health(org, as_of=AS_OF, latest=True)
    assert snapshots.count() == 2
    snapshot = snapshots.get(account=red)
    assert snapshot.score == Decimal("60.0") and snapshot.color == "yellow"
    assert set(snapshot.missing) == {"adoption", "usage_trend", "support", "engagement", "relationship", "financial"}
    parts = {c["key"]: c for c in snapshot.components}
    assert parts["nps"]["weight"] == 0.6 and parts["csm_pulse"]["weight"] == 0.4
    assert sum(c["contribution"] for c in snapshot.components) == pytest.approx(60.0)
    assert latest(red).score == Decimal("60.0") and latest(red).color == "yellow"
    # Another day → another row.
    recompute_health(org, as_of=AS_OF + dt.timedelta(days=1), latest=True)
    assert HealthSnapshot.objects.for_org(org).filter(account=red).count() == 2


def test_churned_and_dataless_accounts_have_no_score(org):
    churned = AccountFactory(organization=org, churned_at=dt.date(2026, 10, 1), lifecycle_stage="churned")
    staged = AccountFactory(organization=org, lifecycle_stage="churned")
    empty = AccountFactory(organization=org, touch_model="tech")
    future_churn = AccountFactory(organization=org, churned_at=dt.date(2026, 12, 31))
    for account in (churned, staged, future_churn):
        pulse(account, "green")
    result = recompute_health(org, as_of=AS_OF, latest=True)
    assert result.scored == 1 and result.churned == 2 and result.unscored == 3
    for account in (churned, staged, empty):
        score = latest(account)
        assert score.score is None and score.color == "" and score.computed_color == ""
    assert latest(future_churn).score == Decimal("100.0")
    assert HealthSnapshot.objects.for_org(org).get(account=empty).missing  # every component missing


def test_overrides_win_and_are_never_wiped(org, alice):
    account = AccountFactory(organization=org)
    expired = AccountFactory(organization=org)
    pulse(account, "green")
    pulse(expired, "green")
    now = timezone.now()
    override = HealthOverride.all_orgs.create(
        organization=org,
        account=account,
        color="green",
        reason_code="customer_will_churn",
        reason="Told us in the QBR",
        author=alice,
        expires_at=now + dt.timedelta(days=30),
    )
    HealthOverride.all_orgs.create(
        organization=org,
        account=expired,
        color="red",
        reason="old",
        author=alice,
        expires_at=now - dt.timedelta(days=1),
    )
    recompute_health(org, as_of=AS_OF, latest=True)
    score = latest(account)
    assert (score.computed_color, score.color, score.override_id) == ("green", "red", override.pk)
    assert score.score == Decimal("100.0")  # the computed score stays visible
    assert latest(expired).color == "green" and latest(expired).override_id is None
    recompute_health(org, as_of=AS_OF, latest=True)
    override.refresh_from_db()
    assert override.cleared_at is None and HealthOverride.objects.for_org(org).count() == 2
    # A cleared override no longer counts.
    override.cleared_at = now
    override.save()
    recompute_health(org, as_of=AS_OF, latest=True)
    assert latest(account).color == "green"


def test_color_change_webhook_emitted_once(org):
    endpoint = WebhookEndpoint.all_orgs.create(
        organization=org, url="https://hooks.example/x", event_types=["health.color_changed"], secret=generate_secret()
    )
    account = AccountFactory(organization=org, external_id="CRM-1", name="Initech")
    pulse(account, "green", AS_OF - dt.timedelta(days=2))
    recompute_health(org, as_of=AS_OF, latest=True)
    dispatch(org.pk)  # the worker's part after each commit: consumers (webhooks) get the events
    deliveries = WebhookDelivery.objects.for_org(org).filter(endpoint=endpoint)
    assert deliveries.count() == 0  # the first-ever score announces nothing
    pulse(account, "red")
    recompute_health(org, as_of=AS_OF, latest=True)
    recompute_health(org, as_of=AS_OF, latest=True)  # no change: nothing more
    dispatch(org.pk)
    assert deliveries.count() == 1
    payload = deliveries.get().payload
    assert payload == {
        "id": account.pk,
        "external_id": "CRM-1",
        "name": "Initech",
        "from": "green",
        "to": "red",
        "score": "0.0",
    }
    # Past days (backfill) never announce anything.
    pulse(account, "green")
    recompute_health(org, as_of=AS_OF - dt.timedelta(days=1))
    dispatch(org.pk)
    assert deliveries.count() == 1


def test_deltas_and_trend(org):
    account = AccountFactory(organization=org)
    pulse(account, "yellow", AS_OF - dt.timedelta(days=30))
    recompute_health(org, as_of=AS_OF - dt.timedelta(days=30), latest=True)
    pulse(account, "red", AS_OF - dt.timedelta(days=7))
    recompute_health(org, as_of=AS_OF - dt.timedelta(days=7), latest=True)
    pulse(account, "green", AS_OF)
    recompute_health(org, as_of=AS_OF, latest=True)
    score = latest(account)
    assert (score.score, score.delta_7, score.delta_30, score.trend) == (
        Decimal("100.0"),
        Decimal("100.0"),
        Decimal("50.0"),
        "up",
    )
    recompute_health(org, as_of=AS_OF + dt.timedelta(days=1), latest=True)  # no snapshot 7 days before
    assert latest(account).delta_7 is None and latest(account).trend == ""


def test_segment_binding_first_matching_scorecard_by_position(org, alice):
    enterprise = Segment.all_orgs.create(
        organization=org,
        name="Tech",
        rules={"match": "all", "conditions": [{"field": "touch_model", "op": "eq", "value": "tech"}]},
    )
    europe = Segment.all_orgs.create(
        organization=org,
        name="EMEA",
        rules={"match": "all", "conditions": [{"field": "region", "op": "eq", "value": "EMEA"}]},
    )
    only_pulse = {
        "components": [
            {
                "key": "pulse",
                "signal": "csm_pulse",
                "weight": 1,
                "function": {"type": "categorical", "points": {"green": 100, "yellow": 50, "red": 0}},
            }
        ]
    }
    harsh = {
        "components": [
            {
                "key": "pulse",
                "signal": "csm_pulse",
                "weight": 1,
                "function": {"type": "categorical", "points": {"green": 40, "yellow": 20, "red": 0}},
            }
        ]
    }
    second = Scorecard.all_orgs.create(organization=org, name="EMEA", segment=europe, position=2)
    first = Scorecard.all_orgs.create(organization=org, name="Tech", segment=enterprise, position=1)
    save_scorecard_version(first, harsh, user=alice)
    save_scorecard_version(second, only_pulse, user=alice)
    tech_emea = AccountFactory(organization=org, touch_model="tech", region="EMEA")
    emea = AccountFactory(organization=org, touch_model="low", region="EMEA")
    other = AccountFactory(organization=org, touch_model="low", region="APAC")
    for account in (tech_emea, emea, other):
        pulse(account, "green")
    recompute_health(org, as_of=AS_OF, latest=True)
    assert latest(tech_emea).scorecard_id == first.pk and latest(tech_emea).score == Decimal("40.0")
    assert latest(emea).scorecard_id == second.pk and latest(emea).score == Decimal("100.0")
    default = Scorecard.objects.for_org(org).get(is_default=True)
    assert latest(other).scorecard_id == default.pk
    assert latest(tech_emea).scorecard_version_id == first.current_version_id
    # An inactive scorecard is skipped.
    first.is_active = False
    first.save()
    recompute_health(org, as_of=AS_OF, latest=True)
    assert latest(tech_emea).scorecard_id == second.pk


def _accounts_with_data(org, count: int) -> None:
    for i in range(count):
        account = AccountFactory(organization=org)
        pulse(account, ("green", "yellow", "red")[i % 3])
        ContactFactory(account=account, roles=["champion"])
        nps(account, i % 11)


@pytest.mark.parametrize("vendor_note", ["queries"])
def test_query_count_does_not_grow_with_accounts(org, vendor_note):
    WebhookEndpoint.all_orgs.create(
        organization=org, url="https://hooks.example/x", event_types=["health.color_changed"], secret=generate_secret()
    )
    counts = []
    for size in (5, 50):
        _accounts_with_data(org, size if not counts else size - 5)
        recompute_health(org, as_of=AS_OF, latest=True)  # warm: scores exist, overrides/deltas read
        with CaptureQueriesContext(connection) as queries:
            result = recompute_health(org, as_of=AS_OF, latest=True)
        assert result.accounts == size
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert counts[0] <= 30


def test_account_subset_touches_only_those_accounts(org):
    a = AccountFactory(organization=org)
    b = AccountFactory(organization=org)
    pulse(a, "green")
    pulse(b, "green")
    result = recompute_health(org, [a.pk], as_of=AS_OF, latest=True)
    assert result.accounts == 1
    assert HealthSnapshot.objects.for_org(org).filter(account=b).count() == 0
    assert HealthScore.objects.for_org(org).filter(account=b).count() == 0


PULSE_ONLY = {
    "components": [
        {
            "key": "pulse",
            "signal": "csm_pulse",
            "weight": 1,
            "function": {"type": "categorical", "points": {"green": 100, "yellow": 50, "red": 0}},
        }
    ]
}


def test_save_scorecard_version_numbers_and_validates(org, alice):
    from health.scoring import DefinitionError

    scorecard = Scorecard.objects.for_org(org).get(is_default=True)
    assert scorecard.current_version.number == 1
    version = save_scorecard_version(scorecard, PULSE_ONLY, user=alice, note="Pulse only")
    assert version.number == 2 and version.created_by == alice and version.note == "Pulse only"
    scorecard.refresh_from_db()
    assert scorecard.current_version_id == version.pk
    with pytest.raises(DefinitionError) as error:
        save_scorecard_version(scorecard, {"components": [{"key": "x", "signal": "mood", "weight": 1}]}, user=alice)
    assert ("components.0.signal" in dict(error.value.errors)) and scorecard.versions.count() == 2
    account = AccountFactory(organization=org)
    pulse(account, "yellow")
    recompute_health(org, as_of=AS_OF, latest=True)
    snapshot = HealthSnapshot.objects.for_org(org).get(account=account)
    assert snapshot.scorecard_version_id == version.pk and snapshot.score == Decimal("50.0")


def test_preview_counts_colour_changes_without_writing(org, alice):
    from accounts.models import Account
    from health.services import preview_scorecard

    today = timezone.localdate()
    big = AccountFactory(organization=org, name="Big")
    small = AccountFactory(organization=org, name="Small")
    steady = AccountFactory(organization=org, name="Steady")
    churned = AccountFactory(organization=org, name="Gone", churned_at=today - dt.timedelta(days=3))
    Account.all_orgs.filter(pk=big.pk).update(arr=Decimal("90000"))
    Account.all_orgs.filter(pk=small.pk).update(arr=Decimal("1000"))
    Account.all_orgs.filter(pk=steady.pk).update(arr=Decimal("5000"))
    for account, color in ((big, "yellow"), (small, "yellow"), (steady, "red"), (churned, "green")):
        pulse(account, color, today)
    scorecard = Scorecard.objects.for_org(org).get(is_default=True)
    save_scorecard_version(scorecard, PULSE_ONLY, user=alice)  # yellow pulse → 50 (yellow)
    harsh_points = {"type": "categorical", "points": {"green": 100, "yellow": 20, "red": 0}}
    harsher = {"components": [{**PULSE_ONLY["components"][0], "function": harsh_points}]}
    preview = preview_scorecard(org, scorecard, harsher)
    assert preview["accounts_scored"] == 3
    assert preview["accounts_changing"] == 2 and preview["arr_changing"] == "91000.00"
    assert preview["changes"] == [{"from": "yellow", "to": "red", "accounts": 2, "arr": "91000.00"}]
    assert [e["name"] for e in preview["examples"]] == ["Big", "Small"]
    assert preview["examples"][0] == {
        "account_id": big.pk,
        "name": "Big",
        "from": "yellow",
        "to": "red",
        "score_before": 50.0,
        "score_after": 20.0,
    }
    assert not HealthSnapshot.objects.for_org(org).exists() and not HealthScore.objects.for_org(org).exists()
    assert scorecard.versions.count() == 2  # nothing saved


def test_empty_organization(org):
    result = recompute_health(org, as_of=AS_OF, latest=True)
    assert (result.accounts, result.scored) == (0, 0)
    assert recompute_health(org, [], as_of=AS_OF, latest=True).accounts == 0
