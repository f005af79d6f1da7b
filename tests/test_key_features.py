"""Key features flagged by admins: ``feature_users:<name>`` in the daily rollups, and the admin page."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError
from django.utils import timezone

from health.models import KeyFeature, UsageMetric
from health.rollups import rollup_usage

from .factories import AccountFactory
from .signal_factories import UsageEventFactory

pytestmark = pytest.mark.django_db
UTC = dt.UTC
D1, D2 = dt.date(2026, 11, 2), dt.date(2026, 11, 3)


@pytest.fixture
def org(org):
    org.raw_event_retention_days = 36_500  # fixed 2026 dates stay inside the window whenever the suite runs
    org.save()
    return org


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def track(account, user: str, when: dt.datetime, event: str, **kwargs):
    return UsageEventFactory(
        account=account, organization=account.organization, user_id=user, timestamp=when, event=event, **kwargs
    )


def feature_metrics(org) -> dict[tuple[str, dt.date, str], Decimal]:
    return {
        (m.account.external_id, m.date, m.metric): m.value
        for m in UsageMetric.all_orgs.filter(organization=org, metric__startswith="feature_users:").select_related(
            "account"
        )
    }


@pytest.fixture
def usage(org):
    a = AccountFactory(organization=org, external_id="A")
    b = AccountFactory(organization=org, external_id="B")
    # A, day 1: u1 exports twice (counts once), u2 exports once, u3 only views a page → Export users 2.
    track(a, "u1", at(D1, 9), "Export")
    track(a, "u1", at(D1, 15), "Export")
    track(a, "u2", at(D1, 10), "Export")
    track(a, "u3", at(D1, 11), "Page Viewed")
    # A, day 2: u1 builds a report twice → Report Built users 1; no Export that day → no Export row.
    track(a, "u1", at(D2, 9), "Report Built")
    track(a, "u1", at(D2, 10), "Report Built")
    # B, day 1: an anonymous visitor exports (counts by anonymous id) → Export users 1.
    track(b, "", at(D1, 12), "Export", anonymous_id="anon-7")
    # B, day 2: u4 and u5 export, u4 builds a report → Export users 2, Report Built users 1.
    track(b, "u4", at(D2, 8), "Export")
    track(b, "u5", at(D2, 9), "Export")
    track(b, "u4", at(D2, 10), "Report Built")
    return a, b


EXPECTED = {
    ("A", D1, "feature_users:Export"): 2,
    ("A", D2, "feature_users:Report Built"): 1,
    ("B", D1, "feature_users:Export"): 1,
    ("B", D2, "feature_users:Export"): 2,
    ("B", D2, "feature_users:Report Built"): 1,
}


def test_hand_computed_feature_users_for_two_accounts_over_two_days(org, other_org, usage):
    KeyFeature.all_orgs.create(organization=org, event_name="Export", label="CSV export")
    KeyFeature.all_orgs.create(organization=org, event_name="Report Built", label="Reports")
    # The same name flagged in another organization changes nothing here ("Page Viewed" is not flagged here).
    KeyFeature.all_orgs.create(organization=other_org, event_name="Page Viewed", label="Views")
    rollup_usage(org.pk)
    assert feature_metrics(org) == {key: Decimal(n) for key, n in EXPECTED.items()}
    # The event counts are still there beside them.
    assert (
        UsageMetric.all_orgs.get(organization=org, account__external_id="A", date=D1, metric="event:Export").value == 3
    )
    assert not UsageMetric.all_orgs.filter(organization=org, metric="feature_users:Page Viewed").exists()

    before = list(UsageMetric.all_orgs.filter(organization=org).order_by("pk").values_list("pk", "metric", "value"))
    assert rollup_usage(org.pk)["metrics"] == 0  # nothing pending
    assert rollup_usage(org.pk, recompute_since=D1)["days"] == 4  # recomputing the same days: same rows, same values
    after = list(UsageMetric.all_orgs.filter(organization=org).order_by("pk").values_list("pk", "metric", "value"))
    assert after == before


def test_late_event_recomputes_the_day_exactly(org, usage):
    a, _ = usage
    KeyFeature.all_orgs.create(organization=org, event_name="Export", label="Export")
    rollup_usage(org.pk)
    track(a, "u2", at(D1, 20), "Export")  # same user again: still 2
    track(a, "u9", at(D1, 21), "Export")  # a new user: 3
    rollup_usage(org.pk)
    assert feature_metrics(org)[("A", D1, "feature_users:Export")] == 3


def test_flagging_later_fills_past_days_only_when_asked(org, usage):
    rollup_usage(org.pk)
    assert feature_metrics(org) == {}  # nothing flagged: no feature metric at all
    KeyFeature.all_orgs.create(organization=org, event_name="Export", label="Export")
    rollup_usage(org.pk)
    assert feature_metrics(org) == {}  # days already rolled up are not recomputed automatically
    counts = rollup_usage(org.pk, recompute_since=D2)
    assert counts["days"] == 2
    assert feature_metrics(org) == {("B", D2, "feature_users:Export"): 2}
    rollup_usage(org.pk, recompute_since=D1)
    assert feature_metrics(org) == {k: Decimal(v) for k, v in EXPECTED.items() if k[2] == "feature_users:Export"}


def test_event_name_is_unique_per_organization(org, other_org):
    KeyFeature.all_orgs.create(organization=org, event_name="Export", label="Export")
    KeyFeature.all_orgs.create(organization=other_org, event_name="Export", label="Export")  # another org: fine
    with pytest.raises(IntegrityError):
        KeyFeature.all_orgs.create(organization=org, event_name="Export", label="Again")


# --- Admin page -----------------------------------------------------------------------------------


def test_admin_lists_seen_events_and_flags_and_unflags(client, org, alice):
    a = AccountFactory(organization=org, external_id="A")
    now = timezone.now()
    for user in ("u1", "u2", "u3"):
        track(a, user, now - dt.timedelta(days=1), "Export")
    track(a, "u1", now - dt.timedelta(days=2), "Report Built")
    track(a, "u1", now - dt.timedelta(days=45), "Old Feature")  # outside the 30 days
    client.force_login(alice)
    base = f"/o/{org.slug}/admin/features/"
    page = client.get(base)
    assert page.status_code == 200
    rows = {r["event"]: r["volume"] for r in page.context["rows"]}
    assert rows == {"Export": 3, "Report Built": 1}
    assert "Export" in page.content.decode()

    response = client.post(base, {"event_name": "Export", "label": "CSV export"})
    assert response.status_code == 302
    feature = KeyFeature.all_orgs.get(organization=org)
    assert (feature.event_name, feature.label) == ("Export", "CSV export")
    assert "CSV export" in client.get(base).content.decode()

    # Flagging the same name again: a clear form error, nothing changed.
    again = client.post(base, {"event_name": "Export", "label": "Other"})
    assert again.status_code == 400
    assert "“Export” is already flagged as the key feature “CSV export”." in again.content.decode()
    assert KeyFeature.all_orgs.filter(organization=org).count() == 1

    # A name not seen yet can be flagged by typing it; the label defaults to the name.
    assert client.post(base, {"event_name": "Dashboard Shared", "label": ""}).status_code == 302
    assert KeyFeature.all_orgs.get(organization=org, event_name="Dashboard Shared").label == "Dashboard Shared"
    assert client.post(base, {"event_name": "  ", "label": "x"}).status_code == 400

    assert client.post(f"{base}{feature.pk}/unflag/").status_code == 302
    assert not KeyFeature.all_orgs.filter(pk=feature.pk).exists()


def test_csm_gets_403_and_another_org_gets_404(client, org, other_org, bob, charlie):
    theirs = KeyFeature.all_orgs.create(organization=other_org, event_name="Export", label="Export")
    client.force_login(bob)  # a CSM of org
    assert client.get(f"/o/{org.slug}/admin/features/").status_code == 403
    assert client.post(f"/o/{org.slug}/admin/features/", {"event_name": "X"}).status_code == 403
    client.force_login(charlie)  # an admin of other_org only
    assert client.get(f"/o/{org.slug}/admin/features/").status_code == 404
    # Charlie's own feature cannot be reached through org's URL either.
    assert client.post(f"/o/{org.slug}/admin/features/{theirs.pk}/unflag/").status_code == 404
    assert KeyFeature.all_orgs.filter(pk=theirs.pk).exists()


def test_admin_cannot_unflag_another_orgs_feature(client, org, other_org, alice):
    theirs = KeyFeature.all_orgs.create(organization=other_org, event_name="Export", label="Export")
    client.force_login(alice)
    assert client.post(f"/o/{org.slug}/admin/features/{theirs.pk}/unflag/").status_code == 404
    assert KeyFeature.all_orgs.filter(pk=theirs.pk).exists()
