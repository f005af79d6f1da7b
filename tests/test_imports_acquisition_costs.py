"""The ``acquisition_costs`` CSV import kind: upsert by account or segment, every bad row reported with its
line and column, all or nothing, dry run, and another organization's rows left alone."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from accounts.models import Segment
from cs_platform.imports import import_csv
from value.models import AcquisitionCost

from .factories import AccountFactory

pytestmark = pytest.mark.django_db
HEADER = "account_external_id,segment,acquisition_cost,onboarding_cost,notes\n"


def csv(*rows: str) -> io.StringIO:
    return io.StringIO(HEADER + "".join(row + "\n" for row in rows))


@pytest.fixture
def book(org):
    AccountFactory(organization=org, external_id="ACME")
    AccountFactory(organization=org, external_id="INITECH")
    AccountFactory(organization=org, external_id="HOOLI")
    Segment.all_orgs.get_or_create(organization=org, name="Enterprise")
    return org


def costs(org):
    return {
        (row.account.external_id if row.account else row.segment.name): (row.acquisition_cost, row.onboarding_cost,
                                                                           row.notes)
        for row in AcquisitionCost.all_orgs.filter(organization=org).select_related("account", "segment")
    }  # fmt: skip


def test_import_creates_updates_and_leaves_unchanged(org, book):
    rows = ("ACME,,12000,3000.50,Paid search", ",enterprise,40000,,Field sales average", "INITECH,,500,0,")
    first = import_csv(org, "acquisition_costs", csv(*rows))
    assert first.ok, first.errors
    assert (first.created, first.updated, first.unchanged) == (3, 0, 0)
    assert costs(org) == {
        "ACME": (Decimal("12000.00"), Decimal("3000.50"), "Paid search"),
        "Enterprise": (Decimal("40000.00"), Decimal("0.00"), "Field sales average"),  # name matched ignoring case
        "INITECH": (Decimal("500.00"), Decimal("0.00"), ""),
    }
    again = import_csv(org, "acquisition_costs", csv(*rows))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    changed = import_csv(org, "acquisition_costs", csv("ACME,,15000,3000.50,Paid search"))
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 0)
    assert costs(org)["ACME"][0] == Decimal("15000.00")


def test_every_bad_row_is_reported_and_nothing_is_imported(org, book):
    result = import_csv(org, "acquisition_costs", csv(
        "ACME,,100,,ok",               # line 2: good
        "INITECH,Enterprise,100,,",    # 3: both owners
        ",,100,,",                     # 4: neither
        "NOPE,,100,,",                 # 5: unknown account
        ",Nowhere,100,,",              # 6: unknown segment
        "ACME,,200,,",                 # 7: ACME twice
        "INITECH,,-5,,",               # 8: negative
        ",Enterprise,,,",              # 9: acquisition_cost required
        "HOOLI,,1.234,,",              # 10: three decimals
        ",ENTERPRISE,5,,",             # 11: Enterprise again (case does not matter), first on line 9
    ))  # fmt: skip
    assert not result.ok
    found = {(e.line, e.column) for e in result.errors}
    assert found == {
        (3, "segment"),
        (4, "account_external_id"),
        (5, "account_external_id"),
        (6, "segment"),
        (7, "account_external_id"),
        (8, "acquisition_cost"),
        (9, "acquisition_cost"),
        (10, "acquisition_cost"),
        (11, "segment"),
    }
    assert "named twice (first on line 2)" in next(e.reason for e in result.errors if e.line == 7)
    assert not AcquisitionCost.all_orgs.exists()  # one bad row imports nothing


def test_dry_run_writes_nothing(org, book):
    result = import_csv(org, "acquisition_costs", csv("ACME,,100,,"), dry_run=True)
    assert result.ok and result.created == 1
    assert not AcquisitionCost.all_orgs.exists()


def test_another_organizations_accounts_and_segments_are_unknown(org, other_org, book):
    AccountFactory(organization=other_org, external_id="GLOBEX")
    Segment.all_orgs.create(organization=other_org, name="Theirs")
    theirs = AcquisitionCost.all_orgs.create(organization=other_org, segment=Segment.all_orgs.get(
        organization=other_org, name="Theirs"), acquisition_cost=Decimal("1"))  # fmt: skip
    result = import_csv(org, "acquisition_costs", csv("GLOBEX,,100,,", ",Theirs,100,,"))
    assert {(e.line, e.column) for e in result.errors} == {(2, "account_external_id"), (3, "segment")}
    # A same-named segment of this organization is this organization's row; the other's stays as it was.
    Segment.all_orgs.create(organization=org, name="Theirs")
    ok = import_csv(org, "acquisition_costs", csv(",Theirs,100,,"))
    assert ok.ok and ok.created == 1
    theirs.refresh_from_db()
    assert theirs.acquisition_cost == Decimal("1.00")
