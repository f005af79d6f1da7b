"""The ``survey_responses`` CSV import kind (spec §8): upsert by external_id, every bad row reported with
its line and column, all or nothing, dry run, another organization's rows left alone, and imported rows
counting like answered ones."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from cs_platform.imports import import_csv
from cs_platform.models import DomainEvent
from feedback.analytics import figures
from feedback.models import SurveyResponse

from .factories import AccountFactory, ContactFactory

pytestmark = pytest.mark.django_db
HEADER = "external_id,account_external_id,contact_external_id,kind,score,responded_at,comment\n"


def csv(*rows: str) -> io.StringIO:
    return io.StringIO(HEADER + "".join(row + "\n" for row in rows))


@pytest.fixture
def book(org):
    acme = AccountFactory(organization=org, external_id="ACME")
    ContactFactory(account=acme, external_id="C-ANN")
    other = AccountFactory(organization=org, external_id="GLOBEX")
    ContactFactory(account=other, external_id="C-BOB")
    return acme


def test_import_creates_updates_and_leaves_unchanged(org, book):
    rows = (
        "R1,ACME,C-ANN,nps,9,2026-03-01,Great onboarding",
        "R2,ACME,,csat,4,2026-03-02T10:00:00,",
        'R3,ACME,,ces,7,2026-03-03T10:00:00+02:00,"Easy, fast"',
    )
    first = import_csv(org, "survey_responses", csv(*rows))
    assert first.ok, first.errors
    assert (first.created, first.updated, first.unchanged) == (3, 0, 0)
    r1, r2, r3 = SurveyResponse.all_orgs.filter(organization=org).order_by("external_id")
    assert (r1.kind, r1.score, r1.contact.external_id, r1.comment, r1.source) == (
        "nps",
        9,
        "C-ANN",
        "Great onboarding",
        "import",
    )
    assert r1.responded_at == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)  # a date: midnight in the org's zone (UTC)
    assert r2.responded_at == dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)  # no offset: UTC
    assert r3.responded_at == dt.datetime(2026, 3, 3, 8, tzinfo=dt.UTC)  # its offset wins
    assert r2.contact is None
    again = import_csv(org, "survey_responses", csv(*rows))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    changed = import_csv(org, "survey_responses", csv("R1,ACME,C-ANN,nps,3,2026-03-01,Changed my mind"))
    assert (changed.created, changed.updated) == (0, 1)
    r1.refresh_from_db()
    assert (r1.score, r1.comment) == (3, "Changed my mind")
    # No event: history does not fire playbooks.
    assert not DomainEvent.all_orgs.filter(name="survey.response").exists()


def test_every_bad_row_is_reported_with_line_and_column_and_nothing_is_imported(org, book):
    result = import_csv(org, "survey_responses", csv(
        "OK1,ACME,,nps,10,2026-03-01,fine",            # line 2: good
        ",ACME,,nps,10,2026-03-01,",                   # 3: external_id required
        "B2,NOPE,,nps,10,2026-03-01,",                 # 4: unknown account
        "B3,ACME,C-NOBODY,nps,10,2026-03-01,",         # 5: unknown contact
        "B4,ACME,C-BOB,nps,10,2026-03-01,",            # 6: contact of another account
        "B5,ACME,,nps,11,2026-03-01,",                 # 7: out of range for nps
        "B6,ACME,,csat,0,2026-03-01,",                 # 8: out of range for csat
        "B7,ACME,,ces,8,2026-03-01,",                  # 9: out of range for ces
        "B8,ACME,,stars,3,2026-03-01,",                # 10: unknown kind
        "B9,ACME,,nps,x,2026-03-01,",                  # 11: not a number
        "B10,ACME,,nps,5,03/01/2026,",                 # 12: not a date
        "OK1,ACME,,nps,9,2026-03-02,",                 # 13: duplicate external_id
    ))  # fmt: skip
    assert not result.ok
    got = {(e.line, e.column) for e in result.errors}
    assert got == {
        (3, "external_id"), (4, "account_external_id"), (5, "contact_external_id"), (6, "contact_external_id"),
        (7, "score"), (8, "score"), (9, "score"), (10, "kind"), (11, "score"), (12, "responded_at"),
        (13, "external_id"),
    }  # fmt: skip
    assert not SurveyResponse.all_orgs.exists()


def test_a_dry_run_writes_nothing(org, book):
    result = import_csv(org, "survey_responses", csv("R1,ACME,,nps,9,2026-03-01,"), dry_run=True)
    assert result.ok and result.created == 1
    assert not SurveyResponse.all_orgs.exists()


def test_another_organizations_rows_are_left_alone(org, other_org, book):
    theirs = AccountFactory(organization=other_org, external_id="ACME")
    SurveyResponse.all_orgs.create(organization=other_org, account=theirs, external_id="R1", kind="nps", score=0,
                                   responded_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))  # fmt: skip
    assert import_csv(org, "survey_responses", csv("R1,ACME,,nps,9,2026-03-01,")).created == 1
    assert SurveyResponse.all_orgs.get(organization=other_org).score == 0
    # The other organization's contact is invisible.
    ContactFactory(account=theirs, external_id="C-THEIRS")
    bad = import_csv(org, "survey_responses", csv("R2,ACME,C-THEIRS,nps,9,2026-03-01,"))
    assert [(e.line, e.column) for e in bad.errors] == [(2, "contact_external_id")]


def test_imported_responses_count_like_answered_ones(org, book):
    import_csv(org, "survey_responses", csv("R1,ACME,,nps,10,2026-03-01,", "R2,ACME,,nps,0,2026-03-02,"))
    assert figures(org, "nps", dt.date(2026, 3, 1), dt.date(2026, 3, 31))["nps"] == 0.0


def test_a_date_is_midnight_in_the_organizations_time_zone_and_counts_on_that_day(org, book, client, alice):
    """A Los Angeles team imports "2026-03-01": the answer is on March 1 there (08:00 UTC), so the dashboard,
    which buckets days in the organization's zone, counts it in March, not on February 28. A date-time
    without an offset stays UTC (spec §8)."""
    org.time_zone = "America/Los_Angeles"
    org.save(update_fields=["time_zone"])
    result = import_csv(org, "survey_responses", csv(
        "R1,ACME,,nps,10,2026-03-01,", "R2,ACME,,nps,0,2026-03-01T00:00:00,", "R3,ACME,,nps,9,2026-07-01,",
    ))  # fmt: skip
    assert result.ok, result.errors
    r1, r2, r3 = SurveyResponse.all_orgs.filter(organization=org).order_by("external_id")
    assert r1.responded_at == dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)  # PST: UTC−8
    assert r3.responded_at == dt.datetime(2026, 7, 1, 7, tzinfo=dt.UTC)  # PDT: UTC−7
    assert r2.responded_at == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)  # a date-time without offset: UTC
    march = figures(org, "nps", dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    assert march["responses"] == 1 and march["nps"] == 100.0  # R2 is Feb 28 in Los Angeles
    february = figures(org, "nps", dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert february["responses"] == 1 and february["nps"] == -100.0
    # The upload page says how the column is read.
    client.force_login(alice)
    page = client.get(f"/o/{org.slug}/admin/imports/").content.decode()
    assert 'data-testid="column-help-survey_responses-responded_at"' in page
    assert "midnight in the organization&#x27;s time zone" in page
