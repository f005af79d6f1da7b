"""seed_demo: deterministic, realistic, replaceable."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db.models import Count

from accounts.demo import DEMO_PASSWORD, seed_demo
from accounts.models import Account, Contact, Contract, Membership, Organization
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 23)
ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def snapshot(org):
    return list(
        Account.objects.for_org(org).order_by("external_id").values_list("external_id", "name", "arr", "owner__email")
    )


def test_same_seed_same_data_and_rerun_replaces():
    first = seed_demo(slug="demo", accounts=60, seed=7, today=TODAY)
    org = first.organization
    before = snapshot(org)
    assert len(before) == 60 and org.name == "Demo Co"
    again = seed_demo(slug="demo", accounts=60, seed=7, today=TODAY)
    assert snapshot(org) == before  # replaced, not duplicated
    assert again.counts == first.counts
    other = seed_demo(slug="demo-b", accounts=60, seed=8, today=TODAY)
    assert [row[1] for row in snapshot(other.organization)] != [row[1] for row in before]


def test_accounts_with_live_contracts_have_arr_and_churn_is_consistent():
    summary = seed_demo(slug="demo", accounts=300, seed=42, today=TODAY)
    org = summary.organization
    assert summary.arr_refreshed == 0  # the generator's ARR agrees with refresh_current_arr
    live = Contract.objects.for_org(org).filter(start_date__lte=TODAY, end_date__gte=TODAY).exclude(status="cancelled")
    with_live = set(live.values_list("account_id", flat=True))
    accounts = Account.objects.for_org(org)
    assert with_live and all(a.arr > 0 for a in accounts.filter(id__in=with_live))
    churned = accounts.filter(churned_at__isnull=False)
    assert churned.exists()
    assert set(churned.values_list("lifecycle_stage", flat=True)) == {"churned"}
    assert not churned.filter(arr__gt=0).exists()
    assert accounts.filter(parent__isnull=False).exists()  # a few hierarchies
    # siblings used to share a region, hence a name and a domain ("Auroragate Materials EMEA" three times)
    assert accounts.values("name").distinct().count() == accounts.count()
    assert accounts.values("domain").distinct().count() == accounts.count()
    assert set(accounts.values_list("touch_model", flat=True)) == {"high", "low", "tech"}
    assert Contact.objects.for_org(org).filter(is_active=False).exists()
    multi_year = accounts.annotate(n=Count("contracts")).filter(n__gte=3)
    assert multi_year.exists()


def test_members_and_roles():
    org = seed_demo(slug="demo", accounts=30, seed=1, today=TODAY).organization
    roles = dict(Membership.objects.for_org(org).values_list("user__email", "role"))
    assert roles["admin@demo.retain.local"] == "admin"
    assert sorted(roles.values()).count("csm") == 6
    assert sorted(roles.values()).count("leader") == 1 and sorted(roles.values()).count("viewer") == 1
    leader = Membership.objects.for_org(org).get(role="leader").user
    assert Membership.objects.for_org(org).filter(team__manager=leader, role="csm").count() == 6
    admin = Membership.objects.for_org(org).get(user__email="admin@demo.retain.local").user
    assert admin.check_password(DEMO_PASSWORD)
    owners = set(Account.objects.for_org(org).exclude(owner=None).values_list("owner_id", flat=True))
    csms = set(Membership.objects.for_org(org).filter(role="csm").values_list("user_id", flat=True))
    assert owners <= csms


def test_command_prints_login_and_refuses_foreign_org(org):
    out = io.StringIO()
    call_command("seed_demo", "--accounts", "20", stdout=out)
    assert out.getvalue().splitlines()[-1] == f"Demo login: admin@demo.retain.local / {DEMO_PASSWORD}"
    AccountFactory(organization=org, external_id="CRM-1")
    with pytest.raises(CommandError, match="did not make"):
        call_command("seed_demo", "--org", org.slug, "--accounts", "5", stdout=io.StringIO())
    assert Account.objects.for_org(org).filter(external_id="CRM-1").exists()
    assert Organization.objects.filter(slug="demo").count() == 1


def test_contact_emails_are_valid_even_for_accented_names():
    """Regression: ``Sam Müller`` got ``sam.müller@…``, which Django's email validation (the API's and the
    CSV import's) rejects, so a demo contact could not be saved back or re-imported."""
    from django.core.validators import validate_email

    org = seed_demo(slug="demo", accounts=60, seed=42, today=TODAY).organization
    contacts = Contact.objects.for_org(org)
    for email in contacts.values_list("email", flat=True):
        validate_email(email)
    assert contacts.filter(name__contains="Müller", email__contains=".muller@").exists()  # the case is exercised


def test_copy_value_matches_copy_text():
    from decimal import Decimal

    from cs_platform.imports.copy import copy_text, copy_value, format_row

    values = [None, True, False, 0, 42, -7, 1.5, Decimal("12.50"), "plain", "tab\there", "back\\slash",
              "line\nbreak\r", TODAY, dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC), {"plan": "Growth"},
              ["champion", "admin"], []]  # fmt: skip
    assert [copy_value(v) for v in values] == [copy_text(v) for v in values]
    assert format_row([1, None, "a\tb"]) == "1\t\\N\ta\\tb\n"


def test_reseeding_replaces_health_rows():
    """Runs on both databases: the demo writes with COPY on Postgres and with bulk inserts on SQLite."""
    from feedback.models import SurveyResponse
    from health.models import Invoice, Ticket, UsageMetric

    first = seed_demo(slug="demo", accounts=40, seed=3, today=TODAY)
    again = seed_demo(slug="demo", accounts=40, seed=3, today=TODAY)
    org = again.organization
    for model, key in ((UsageMetric, "usage_metrics"), (Ticket, "tickets"), (Invoice, "invoices"),
                       (SurveyResponse, "nps_responses")):  # fmt: skip
        rows = model.objects.for_org(org)
        if model is SurveyResponse:  # health's imported NPS history; feedback adds answered ones
            rows = rows.filter(source="import")
        assert rows.count() == again.counts[key] == first.counts[key] > 0
    answered = SurveyResponse.objects.for_org(org).filter(source="survey")
    assert answered.count() == again.counts["survey_answers"] == first.counts["survey_answers"] > 0
    assert (
        answered.exclude(comment="").exists() and answered.filter(invitation__isnull=False).count() == answered.count()
    )


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="bulk_load turns Postgres foreign-key triggers off; SQLite has none")
def test_bulk_load_checks_references_it_did_not_check_row_by_row():
    from django.db import IntegrityError, connection, transaction

    from cs_platform.imports.copy import bulk_load, copy_lines
    from health.models import UsageMetric

    org = seed_demo(slug="demo", accounts=10, seed=3, today=TODAY).organization
    with transaction.atomic():
        with bulk_load(connection, org.pk, [UsageMetric]) as unchecked:
            pass
    if not unchecked:
        pytest.skip("this database role may not turn foreign-key triggers off; the per-row checks stay on")
    missing = Account.all_orgs.order_by("-pk").values_list("pk", flat=True).first() + 1000
    with pytest.raises(IntegrityError, match="UsageMetric"), transaction.atomic():
        with bulk_load(connection, org.pk, [UsageMetric]):
            columns = ["organization_id", "account_id", "date", "metric", "value"]
            copy_lines(
                connection, UsageMetric._meta.db_table, columns, [f"{org.pk}\t{missing}\t2026-11-20\tevents\t5\n"]
            )
    assert not UsageMetric.objects.for_org(org).filter(account_id=missing).exists()
