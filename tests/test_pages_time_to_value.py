"""The time-to-value report page and Portfolio's onboarding section (issue 15, item 2): the golden figures of
tests/test_time_to_value.py on the page, filters, drill-downs to the accounts behind a figure, roles, the other
organization, charts beside tables with the same numbers."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.urls import reverse

from .ttv_helpers import at, build_book

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(org, other_org, make_member):
    return build_book(org, other_org, make_member)


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(at(dt.date(2026, 6, 30)), tick=False):
        yield


def url(org) -> str:
    return reverse("time-to-value", args=[org.slug])


def page(client, user, org, **params) -> str:
    client.force_login(user)
    response = client.get(url(org), {"start": "2026-01-01", "end": "2026-06-30", **params})
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
def test_every_member_reads_the_report_with_the_golden_figures(role, client, org, book, make_member):
    html = page(client, make_member(org, role).user, org)
    summary = re.sub(r"\s+", " ", re.search(r'data-testid="ttv-summary">(.*?)</p>', html, re.S).group(1))
    assert "<strong>7</strong> projects" in summary and "median <strong>59.5</strong> days" in summary
    assert "<strong>50%</strong> on time" in summary and "<strong>75%</strong> of onboarding accounts" in summary
    for testid in ("ttv-distribution", "ttv-trend", "ttv-cohort", "ttv-csm", "ttv-segment", "ttv-risk"):
        assert f'data-testid="{testid}"' in html


def test_charts_draw_the_numbers_of_the_tables_beside_them(client, org, book):
    html = page(client, book["alice"], org)
    trend_chart = re.search(r'data-testid="trend-chart">(.*?)</figure>', html, re.S).group(1)
    drawn = dict(re.findall(r'data-category="([^"]+)" data-total="([^"]*)"', trend_chart))
    table = re.search(r'data-testid="ttv-trend">(.*?)</table>', html, re.S).group(1)
    listed = re.findall(r'<th scope="row">(\d{4}-Q\d)</th>.*?data-median="([^"]*)"', table, re.S)
    assert drawn == {"2026-Q1": "73.0", "2026-Q2": "54.5"}
    assert [(q, float(m)) for q, m in listed] == [("2026-Q1", 73.0), ("2026-Q2", 54.5)]
    csm_chart = re.search(r'data-testid="chart-csm">(.*?)</figure>', html, re.S).group(1)
    assert re.findall(r'data-value="([^"]+)"', csm_chart) == ["54.5", "61.5"]  # Alice, then Bob (the table's order)


def test_drill_downs_list_the_accounts_behind_each_figure(client, org, book):
    def drilled(show: str) -> set[str]:
        html = page(client, book["alice"], org, show=show)
        block = re.search(r'data-testid="ttv-drill">(.*?)</section>', html, re.S).group(1)
        return set(re.findall(r'<th scope="row"><a href="[^"]+">(A\d)</a>', block))

    assert drilled("at_risk") == {"A5", "A6", "A9"}
    assert drilled("risk:red") == {"A9"}
    assert drilled("on_time") == {"A1", "A4"}
    assert drilled("late") == {"A2", "A3"}
    assert drilled(f"segment:{book['enterprise'].pk}") == {"A1", "A2", "A4"}
    assert drilled(f"csm:{book['bob'].pk}") == {"A1", "A2", "A5"}
    assert drilled("cohort:2026-Q1") == {"A1", "A2", "A3"}
    assert drilled("golive:2026-Q1") == {"A1", "A2", "A7"}
    assert drilled("running") == {"A5", "A6", "A9"}
    assert "Unknown figure" in page(client, book["alice"], org, show="nonsense")


def test_filters_narrow_the_page_and_bad_ones_say_so(client, org, book):
    html = page(client, book["alice"], org, owner=book["bob"].pk)
    assert "median <strong>61.5</strong> days" in re.sub(r"\s+", " ", html)
    html = page(client, book["alice"], org, segment=book["enterprise"].pk)
    assert "median <strong>50</strong> days" in re.sub(r"\s+", " ", html)
    html = page(client, book["alice"], org, start="2026-06-01", end="2026-01-01")
    assert "The end date must not be before the start date." in html
    html = page(client, book["alice"], org, segment="999999")
    assert 'role="alert"' in html  # not a choice: the form says so, the default figures are shown


def test_other_organizations_and_strangers(client, org, other_org, book, make_member):
    client.force_login(make_member(other_org, "admin").user)
    assert client.get(url(org)).status_code == 404  # not a member there: like a missing page
    html = client.get(url(other_org), {"start": "2026-01-01", "end": "2026-06-30"}).content.decode()
    assert "<strong>1</strong> project " in re.sub(r"\s+", " ", html) and "A1" not in html
    client.logout()
    assert client.get(url(org)).status_code == 302  # to the login page


def test_portfolio_shows_the_onboarding_section_with_a_link_to_the_report(client, org, book, make_member):
    client.force_login(make_member(org, "leader").user)
    html = client.get(reverse("portfolio", args=[org.slug])).content.decode()
    section = re.sub(r"\s+", " ", re.search(r'data-testid="portfolio-onboarding">(.*?)</section>', html, re.S).group(1))
    # The last four quarters (2025-07-01 → today): P1–P7 and P9 → go-lives 40, 50, 69, 73, 75 → median 69;
    # on time 2 of 5 (P7 late too); onboarding A4, A5, A6, A9 with 3 at risk.
    assert 'data-testid="onb-accounts"><a href="/o/acme/reports/time-to-value/?show=onboarding#drill">4</a>' in section
    assert "69 days" in section and "40% <span" in section and "75%</a>" in section
    assert f'href="{url(org)}"' in section
