"""The lifetime value report page, ``/o/<slug>/reports/lifetime-value/``: every role reads it, the figures
are the golden book's (tests/test_value_ltv.py), the drill-down lists a segment's accounts, the chart draws
the numbers of the table beside it, the CSV export neutralises formulas, and another organization's segment
or page is a 404."""

from __future__ import annotations

import csv
import io
import re

import pytest

from accounts.models import Account

from .test_value_ltv import AS_OF, build_book

pytestmark = pytest.mark.django_db


def url(org) -> str:
    return f"/o/{org.slug}/reports/lifetime-value/"


@pytest.fixture
def signed_in(client, make_member):
    def sign_in(org, role):
        client.force_login(make_member(org, role).user)
        return client

    return sign_in


@pytest.mark.parametrize("role", ["admin", "leader", "csm", "viewer"])
def test_every_member_reads_the_report(signed_in, org, role):
    build_book(org)
    page = signed_in(org, role).get(url(org), {"as_of": AS_OF.isoformat()})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/o/acme/reports/lifetime-value/" aria-current="page"' in html  # the nav link
    # Enterprise: LTV 657,000, CAC 270,000, LTV:CAC 2.43, payback 24.7 months; the total 989,150 and 2.59.
    assert re.search(r"Enterprise</a></th>.*?\$657,000.*?\$270,000.*?2\.43×.*?24\.7", html, re.S)
    assert re.search(r"All accounts</th>.*?\$989,150.*?\$382,000.*?2\.59×.*?25\.6", html, re.S)


def test_drill_down_lists_the_segments_accounts(signed_in, org):
    _accounts, segments = build_book(org)
    html = signed_in(org, "viewer").get(url(org), {"as_of": AS_OF.isoformat(),
                                                   "segment": segments["Strategic"].pk}).content.decode()  # fmt: skip
    drill = html[html.index('data-testid="ltv-drill"') :]
    assert drill.index(">N1<") < drill.index(">E2<")  # by LTV: 255,500 then 182,500
    assert "E1" not in drill.split("</table>")[0]
    assert "$438,000" in drill  # the segment's row, under its accounts


def test_the_chart_draws_the_numbers_of_the_table(signed_in, org):
    build_book(org)
    html = signed_in(org, "viewer").get(url(org), {"as_of": AS_OF.isoformat()}).content.decode()
    wallet = html[html.index('data-testid="ltv-wallet"') :]
    chart = wallet[wallet.index("<svg") : wallet.index("</svg>")]
    table = wallet[wallet.index('data-testid="wallet-table"') :]
    drawn = re.findall(r'data-series="(?:grr|nrr)" data-value="([^"]+)"', chart)
    listed = re.findall(r'<td class="num" data-value="([^"]+)"', table)
    assert drawn == listed and len(drawn) == 4  # the accounts' GRR, NRR; the product's GRR, NRR
    assert "style=" not in html.split('data-testid="ltv-summary"')[1]  # CSP: no inline style in the report


def test_csv_export_neutralises_formulas(signed_in, org):
    accounts, segments = build_book(org)
    Account.all_orgs.filter(pk=accounts["N1"].pk).update(name='=HYPERLINK("http://evil")')
    client = signed_in(org, "leader")
    response = client.get(url(org), {"as_of": AS_OF.isoformat(), "export": "csv", "rows": "accounts",
                                     "segment": segments["Strategic"].pk})  # fmt: skip
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:3] == ["account_id", "external_id", "name"]
    names = [row[2] for row in rows[1:]]
    assert names == ['\'=HYPERLINK("http://evil")', "E2"]
    assert rows[1][rows[0].index("ltv")] == "255500.00"
    segments_csv = client.get(url(org), {"as_of": AS_OF.isoformat(), "export": "csv"})
    lines = list(csv.reader(io.StringIO(b"".join(segments_csv.streaming_content).decode("utf-8-sig"))))
    assert [line[0] for line in lines[1:]] == ["Enterprise", "SMB", "Strategic", "All accounts"]
    assert lines[-1][lines[0].index("ltv_to_cac")] == "2.5894"


def test_another_organization_is_a_404(signed_in, org, other_org):
    _accounts, theirs = build_book(other_org)
    client = signed_in(org, "admin")
    assert client.get(url(org), {"segment": theirs["Enterprise"].pk}).status_code == 404
    assert client.get(url(other_org)).status_code == 404  # not a member there
    assert client.get(url(org), {"segment": str(2**64)}).status_code == 404
    assert client.get(url(org), {"as_of": "0001-01-01"}).status_code == 200  # out of range: today


def test_an_empty_organization_renders(signed_in, org):
    page = signed_in(org, "viewer").get(url(org), {"as_of": "not-a-date"})
    assert page.status_code == 200 and "No segments yet" not in page.content.decode()  # default segments exist
