"""Issue 14 item 3: "an admin can apply [the suggested weights] as a new draft" — API and page.

The history makes metric ``a`` decide churn and ``b`` pure noise, under a published scorecard that weighs
``b`` at 90 %: the fit moves the weight onto ``a``, and applying it writes a draft whose weights are the
suggestion's, while the published version (what the engine scores with) stays as it was."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.test import Client

from health.defaults import ensure_default_scorecard
from health.models import ScorecardVersion
from health.services import save_scorecard_version
from renewals.backtest import run_backtest, start_backtest
from renewals.models import Backtest

from .backtest_builders import Row, build_history, one_component
from .factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
DUE = dt.date(2026, 6, 30)


def _finished_backtest(org):
    rng = np.random.default_rng(11)
    a, b = rng.uniform(0, 100, 80), rng.uniform(0, 100, 80)
    rows = [
        Row({"a": float(x), "b": float(y)}, "churned" if x < 40 else "renewed", DUE + dt.timedelta(days=i))
        for i, (x, y) in enumerate(zip(a, b, strict=True))
    ]
    build_history(org, rows, prefix=f"AS{org.pk}")
    card = ensure_default_scorecard(org.pk)
    bad = {"components": [{**one_component("a"), "weight": 10}, {**one_component("b"), "weight": 90}]}
    version = save_scorecard_version(card, bad, user=None, note="b heavy")
    backtest = start_backtest(org, scorecard=card, version=version, date_from=DUE, date_to=DUE + dt.timedelta(days=120))
    run_backtest(org, backtest)
    backtest.refresh_from_db()
    return card, version, backtest


def _client(org, role):
    user = UserFactory()
    MembershipFactory(organization=org, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def _weights(definition):
    return {c["key"]: c["weight"] for c in definition["components"]}


def test_admin_applies_the_suggestion_as_a_draft_and_nothing_scores_differently(org, api):
    card, version, backtest = _finished_backtest(org)
    suggestion = backtest.result["suggestion"]
    assert suggestion["suggested_weights"]["a"] > suggestion["suggested_weights"]["b"]  # the fit saw through b
    url = f"/api/v1/scorecards/{card.pk}/backtests/{backtest.pk}/apply-suggestion/"
    client = api(org, "admin")
    first = client.post(url)
    assert first.status_code == 201, first.content
    body = first.json()
    assert body["state"] == "draft" and body["number"] == version.number + 1
    assert _weights(body["definition"]) == _weights(suggestion["suggested_definition"])
    assert _weights(body["definition"]) != _weights(version.definition)
    assert f"backtest #{backtest.pk}" in body["note"]
    card.refresh_from_db()
    assert card.current_version_id == version.pk  # still scoring with the published version
    # Again: the open draft's weights are replaced (one draft per scorecard), not a second draft.
    again = client.post(url)
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert ScorecardVersion.objects.for_org(org).filter(scorecard=card, published_at__isnull=True).count() == 1


def test_apply_is_for_admins_of_the_backtests_organization(org, other_org, api):
    card, _, backtest = _finished_backtest(org)
    url = f"/api/v1/scorecards/{card.pk}/backtests/{backtest.pk}/apply-suggestion/"
    for role in ("leader", "csm", "viewer"):
        assert api(org, role).post(url).status_code == 403
    assert api(other_org, "admin").post(url).status_code == 404
    assert not ScorecardVersion.objects.for_org(org).filter(scorecard=card, published_at__isnull=True).exists()


def test_a_backtest_without_a_suggestion_is_refused_with_its_reason(org, api):
    card, version, _ = _finished_backtest(org)
    unfinished = Backtest.all_orgs.create(organization=org, scorecard=card, scorecard_version=version,
                                          date_from=DUE, date_to=DUE)  # fmt: skip
    response = api(org, "admin").post(f"/api/v1/scorecards/{card.pk}/backtests/{unfinished.pk}/apply-suggestion/")
    assert response.status_code == 400 and "no suggested weights" in response.json()["errors"]["backtest"][0]


def test_the_backtest_page_button_opens_the_editor_on_the_draft(org):
    card, version, backtest = _finished_backtest(org)
    page = f"/o/{org.slug}/admin/scorecards/{card.pk}/backtests/"
    admin = _client(org, "admin")
    assert 'data-testid="bt-apply-suggestion"' in admin.get(f"{page}?shown={backtest.pk}").content.decode()
    response = admin.post(f"{page}{backtest.pk}/apply-suggestion/")
    assert response.status_code == 302 and response["Location"].endswith(f"/admin/scorecards/{card.pk}/#draft")
    draft = ScorecardVersion.objects.for_org(org).get(scorecard=card, published_at__isnull=True)
    assert _weights(draft.definition) == _weights(backtest.result["suggestion"]["suggested_definition"])
    leader = _client(org, "leader")
    assert 'data-testid="bt-apply-suggestion"' not in leader.get(f"{page}?shown={backtest.pk}").content.decode()
    assert leader.post(f"{page}{backtest.pk}/apply-suggestion/").status_code == 403
