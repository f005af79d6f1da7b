"""The backtest pages: the scorecard editor's section (through health's section registry), the backtests page
(start, follow, compare), roles and tenancy, and charts that draw exactly the numbers of their tables."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest
from django.test import Client

from health.defaults import ensure_default_scorecard
from health.services import save_scorecard_version
from renewals.backtest import run_backtest
from renewals.models import Backtest

from .backtest_builders import Row, build_history, one_component
from .factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
DUE = dt.date(2026, 6, 30)


def _client(org, role):
    user = UserFactory()
    MembershipFactory(organization=org, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def _finished(org, definition, n=40, seed=2):
    rng = np.random.default_rng(seed)
    rows = [Row({"a": float(x), "b": float(y)}, "churned" if x < 35 else "renewed", DUE + dt.timedelta(days=i))
            for i, (x, y) in enumerate(rng.uniform(0, 100, (n, 2)))]  # fmt: skip
    build_history(org, rows, prefix=f"P{org.pk}-{Backtest.all_orgs.count()}")
    card = ensure_default_scorecard(org.pk)
    version = save_scorecard_version(card, definition, user=None, note="test")
    backtest = Backtest.all_orgs.create(organization=org, scorecard=card, scorecard_version=version,
                                        date_from=DUE, date_to=DUE + dt.timedelta(days=365))  # fmt: skip
    run_backtest(org, backtest)
    return card, backtest


def _chart_values(html, testid):
    figure = re.search(rf'data-testid="{testid}">(.*?)</figure>', html, re.S).group(1)
    return [float(v) for v in re.findall(r'data-value="([^"]+)"', figure)]


def _table_values(html, testid):
    table = re.search(rf'data-testid="{testid}"(.*?)</table>', html, re.S).group(1)
    return [float(v) for v in re.findall(r'data-value="([^"]*)"', table) if v]


def test_scorecard_page_shows_the_latest_backtest_with_chart_and_table(org):
    card, backtest = _finished(org, {"components": [one_component("a")]})
    html = _client(org, "admin").get(f"/o/{org.slug}/admin/scorecards/{card.pk}/").content.decode()
    assert 'data-testid="scorecard-backtest"' in html
    assert f'data-testid="backtest-result-{backtest.pk}"' in html
    bands = [b["churn_rate"] for b in backtest.result["bands"] if b["churn_rate"]]
    # The chart draws a bar for every band with churn, with the table's exact figure.
    assert _chart_values(html, "bt-band-chart") == bands
    assert [v for v in _table_values(html, "bt-band-table") if v] == bands
    calibration = [c["churn_rate"] for c in backtest.result["calibration"] if c["churn_rate"]]
    assert _chart_values(html, "bt-calibration-chart") == calibration
    assert [v for v in _table_values(html, "bt-calibration-table") if v] == calibration
    assert "Red &lt; 50" in html or "Red < 50" in html  # the band named in words, not only coloured


def test_backtests_page_starts_follows_and_compares(org, django_capture_on_commit_callbacks):
    card, first = _finished(org, {"components": [one_component("a")]})
    _, second = _finished(org, {"components": [one_component("a", 10), one_component("b", 90)]})
    admin = _client(org, "admin")
    url = f"/o/{org.slug}/admin/scorecards/{card.pk}/backtests/"
    page = admin.get(url)
    assert page.status_code == 200 and 'data-testid="backtest-form"' in page.content.decode()
    compared = admin.get(url, {"compare": [first.pk, second.pk]}).content.decode()
    assert 'data-testid="backtest-compare"' in compared
    assert f"{first.result['auc']}" in compared and f"{second.result['auc']}" in compared
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin.post(url, {"scorecard_version": second.scorecard_version_id, "date_from": "2026-06-01",
                                    "date_to": "2026-12-31", "horizon_days": "60"})  # fmt: skip
    assert response.status_code == 302 and len(callbacks) == 1
    started = Backtest.objects.for_org(org).order_by("-pk").first()
    assert (started.horizon_days, started.status) == (60, "queued")
    shown = admin.get(response["Location"]).content.decode()
    assert 'data-testid="backtest-progress"' in shown and "Queued" in shown
    bad = admin.post(url, {"scorecard_version": second.scorecard_version_id, "date_from": "2026-06-01",
                           "date_to": "2026-05-01", "horizon_days": "60"})  # fmt: skip
    assert bad.status_code == 400 and "Must be on or after" in bad.content.decode()


def test_backtest_page_roles_and_isolation(org, other_org):
    card, _ = _finished(org, {"components": [one_component("a")]})
    url = f"/o/{org.slug}/admin/scorecards/{card.pk}/backtests/"
    leader = _client(org, "leader")
    page = leader.get(url)
    assert page.status_code == 200 and 'data-testid="backtest-form"' not in page.content.decode()
    body = {"date_from": "2026-06-01", "date_to": "2026-12-31", "horizon_days": "90"}
    assert leader.post(url, body).status_code == 403
    for role in ("csm", "viewer"):
        assert _client(org, role).get(url).status_code == 403
    theirs = ensure_default_scorecard(other_org.pk)
    charlie = _client(org, "admin")
    assert charlie.get(f"/o/{org.slug}/admin/scorecards/{theirs.pk}/backtests/").status_code == 404
    assert Backtest.all_orgs.filter(organization=org).count() == 1
