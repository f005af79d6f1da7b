"""The demo's feature requests (issue 13 §7): a backlog linked across accounts and books, ranked by real ARR,
every status present, merged duplicates, and bugs whose keys a few helpdesk tickets carry; re-seeding replaces
them."""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.demo import seed_demo
from feedback.models_requests import FeatureRequest, FeatureRequestLink
from feedback.requests import ranked
from health.models import Ticket

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 11, 23)


def test_demo_links_requests_across_accounts_and_books():
    org = seed_demo(slug="demo", accounts=80, seed=3, today=TODAY).organization
    board = list(ranked(org, today=TODAY))
    assert len(board) >= 10
    assert board[0].arr_at_stake > board[-1].arr_at_stake > 0  # every request has ARR waiting on it
    assert {fr.status for fr in board} == {"new", "under_review", "planned", "shipped", "declined"}
    links = FeatureRequestLink.all_orgs.filter(organization=org)
    assert links.values("account").distinct().count() >= 20
    assert links.values("account__owner").distinct().count() >= 3  # several CSMs' books
    assert FeatureRequest.all_orgs.filter(organization=org, merged_into__isnull=False).count() == 2
    assert Ticket.all_orgs.filter(organization=org).exclude(issue_key="").exists()
    keys = set(Ticket.all_orgs.filter(organization=org).exclude(issue_key="").values_list("issue_key", flat=True))
    assert keys <= set(FeatureRequest.all_orgs.filter(organization=org, type="bug").values_list(
        "external_issue_key", flat=True))  # fmt: skip

    again = seed_demo(slug="demo", accounts=80, seed=3, today=TODAY).organization
    assert FeatureRequest.all_orgs.filter(organization=again).count() == len(board) + 2
