"""Renewals domain logic: opening renewals ahead of contract ends, forecast audit, closing with outcomes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Account, Contract, ContractLine
from accounts.services import Actor
from cs_platform.events import dispatch
from playbooks.models import WebhookDelivery, WebhookEndpoint
from renewals.models import Renewal, RenewalForecastChange, RenewalLineChange
from renewals.services import (
    RenewalPermissionDenied,
    close_renewal,
    create_due_renewals,
    open_renewal,
    renewal_bridge,
    update_forecast,
)

from .factories import AccountFactory, ContractFactory, MembershipFactory, ProductFactory, TeamFactory, UserFactory
from .renewal_factories import contract_with_lines, reason, renewal_for

pytestmark = pytest.mark.django_db

END = dt.date(2026, 12, 31)


def admin(org, user=None):
    return Actor(organization=org, role="admin", user=user)


# --- create_due_renewals ---------------------------------------------------------------------------


def test_renewal_opens_exactly_lead_days_before_the_end(org, bob):
    contract = contract_with_lines(org, owner=bob, end=END)
    opening_day = END - dt.timedelta(days=org.renewal_lead_days)
    assert create_due_renewals(org, today=opening_day - dt.timedelta(days=1)) == 0
    assert not Renewal.objects.for_org(org).exists()
    assert create_due_renewals(org, today=opening_day) == 1
    renewal = Renewal.objects.for_org(org).get()
    assert (renewal.contract, renewal.account_id, renewal.owner, renewal.due_date) == (
        contract,
        contract.account_id,
        bob,
        END,
    )
    assert renewal.current_arr == renewal.forecast_arr == Decimal("10000.00")
    assert (renewal.forecast_category, renewal.probability, renewal.stage) == ("likely", 70, "not_started")


def test_lead_days_is_the_organizations_setting(org):
    org.renewal_lead_days = 30
    org.save()
    contract_with_lines(org, end=END)
    assert create_due_renewals(org, today=END - dt.timedelta(days=31)) == 0
    assert create_due_renewals(org, today=END - dt.timedelta(days=30)) == 1


def test_rerun_creates_no_duplicates_and_catches_up(org):
    contract_with_lines(org, end=END)
    contract_with_lines(org, end=END - dt.timedelta(days=40))  # already deep inside the window
    today = END - dt.timedelta(days=100)
    assert create_due_renewals(org, today=today) == 2
    assert create_due_renewals(org, today=today) == 0
    assert create_due_renewals(org, today=today + dt.timedelta(days=1)) == 0
    assert Renewal.objects.for_org(org).count() == 2


def test_skips_cancelled_ended_churned_and_past_contracts(org):
    contract_with_lines(org, end=END, status="cancelled")
    contract_with_lines(org, end=END, status="ended")
    churned = AccountFactory(organization=org, churned_at=dt.date(2026, 6, 1), lifecycle_stage="churned")
    contract_with_lines(org, account=churned, end=END)
    contract_with_lines(org, start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31))  # already over
    assert create_due_renewals(org, today=END - dt.timedelta(days=10)) == 0


def test_contract_renewed_early_gets_no_renewal(org):
    account = AccountFactory(organization=org)
    old = contract_with_lines(org, account=account, end=END)
    # The successor starts before the old end and runs past it: renewed early.
    contract_with_lines(org, account=account, start=dt.date(2026, 10, 1), end=dt.date(2027, 9, 30))
    # A second account whose next contract is already booked to start the day after the end.
    booked = AccountFactory(organization=org)
    contract_with_lines(org, account=booked, end=END)
    contract_with_lines(org, account=booked, start=dt.date(2027, 1, 1), end=dt.date(2027, 12, 31))
    # A co-termed add-on (same end) is not a renewal: that contract still gets one.
    coterm = AccountFactory(organization=org)
    main = contract_with_lines(org, account=coterm, end=END)
    contract_with_lines(org, account=coterm, start=dt.date(2026, 6, 1), end=END)
    created = create_due_renewals(org, today=dt.date(2026, 11, 1))
    contracts = set(Renewal.objects.for_org(org).values_list("contract_id", flat=True))
    assert old.pk not in contracts
    assert main.pk in contracts
    assert created == len(contracts) == 2  # main and its co-termed add-on


def test_other_organizations_are_untouched(org, other_org):
    contract_with_lines(other_org, end=END)
    assert create_due_renewals(org, today=END - dt.timedelta(days=5)) == 0
    assert not Renewal.all_orgs.exists()


def test_daily_task_records_a_job_and_is_idempotent(org, other_org, settings):
    from accounts.models import JobRun
    from cs_platform.celery import app
    from renewals.tasks import create_all_due_renewals

    assert settings.CELERY_BEAT_SCHEDULE["create-due-renewals"]["task"] == "renewals.tasks.create_all_due_renewals"
    contract_with_lines(org, end=dt.date.today() + dt.timedelta(days=10))
    contract_with_lines(other_org, end=dt.date.today() + dt.timedelta(days=20))
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the per-organization runs execute inline, through the same wrapper
    try:
        assert create_all_due_renewals() == 2
        assert Renewal.objects.for_org(org).count() == Renewal.objects.for_org(other_org).count() == 1
        runs = JobRun.all_orgs.filter(kind="create_due_renewals")
        assert set(runs.values_list("status", flat=True)) == {"succeeded"}
        assert runs.get(organization=org).counts == {"renewals_opened": 1}
        create_all_due_renewals()
    finally:
        app.conf.task_always_eager = before
    assert Renewal.all_orgs.count() == 2


# --- forecast --------------------------------------------------------------------------------------


def test_forecast_update_is_audited_and_emits_the_webhook(org, alice):
    endpoint = WebhookEndpoint.all_orgs.create(
        organization=org, url="https://example.com/h", event_types=["renewal.forecast_changed"], secret="s"
    )
    renewal = renewal_for(contract_with_lines(org))
    changes = update_forecast(
        renewal, by=admin(org, alice), forecast_category="at_risk", forecast_arr="8000", probability=40, notes="x"
    )
    assert {c.field for c in changes} == {"forecast_category", "forecast_arr", "probability", "notes"}
    row = RenewalForecastChange.objects.for_org(org).get(field="forecast_arr")
    assert (row.old_value, row.new_value, row.changed_by) == ("10000.00", "8000.00", alice)
    dispatch(org.pk)  # the worker's part after the commit: the webhook consumer makes the delivery
    delivery = WebhookDelivery.all_orgs.get(endpoint=endpoint)
    assert delivery.event_type == "renewal.forecast_changed"
    assert delivery.payload["changes"]["forecast_category"] == {"old": "likely", "new": "at_risk"}
    assert delivery.payload["changed_by"] == alice.email
    # No change, no audit row and no event; a notes-only change is audited without an event.
    assert update_forecast(renewal, by=admin(org, alice), probability=40) == []
    update_forecast(renewal, by=admin(org, alice), notes="y")
    dispatch(org.pk)
    assert WebhookDelivery.all_orgs.count() == 1
    assert RenewalForecastChange.objects.for_org(org).count() == 5


def test_forecast_validation_errors_per_field(org, alice):
    renewal = renewal_for(contract_with_lines(org))
    with pytest.raises(ValidationError) as exc:
        update_forecast(
            renewal, by=admin(org, alice), forecast_category="maybe", probability=140, stage="won", forecast_arr="-1"
        )
    assert set(exc.value.message_dict) == {"forecast_category", "probability", "stage", "forecast_arr"}
    assert not RenewalForecastChange.objects.for_org(org).exists()


def test_roles_for_forecast_and_final_call(org, bob, make_member):
    leader = make_member(org, "leader").user
    team = TeamFactory(organization=org, manager=leader)
    MembershipFactory._meta.model.all_orgs.filter(organization=org, user=bob).update(team=team)
    stranger = make_member(org, "csm").user
    viewer = make_member(org, "viewer").user
    renewal = renewal_for(contract_with_lines(org, owner=bob))
    csm = Actor(organization=org, role="csm", user=bob)
    update_forecast(renewal, by=csm, csm_call="commit", csm_call_arr="10000")
    with pytest.raises(ValidationError) as exc:
        update_forecast(renewal, by=csm, final_call="commit")
    assert "final_call" in exc.value.message_dict
    for actor in (
        Actor(organization=org, role="csm", user=stranger),
        Actor(organization=org, role="viewer", user=viewer),
    ):
        with pytest.raises(RenewalPermissionDenied):
            update_forecast(renewal, by=actor, probability=10)
    update_forecast(renewal, by=Actor(organization=org, role="leader", user=leader), final_call="likely")
    renewal.refresh_from_db()
    assert (renewal.csm_call, renewal.final_call) == ("commit", "likely")
    # A leader outside the team cannot touch it.
    other_leader = make_member(org, "leader").user
    with pytest.raises(RenewalPermissionDenied):
        update_forecast(renewal, by=Actor(organization=org, role="leader", user=other_leader), final_call="churn")


def test_open_renewal_by_hand(org, alice):
    contract = contract_with_lines(org)
    renewal = open_renewal(contract, by=admin(org, alice), forecast_category="commit")
    assert (renewal.forecast_category, renewal.due_date) == ("commit", contract.end_date)
    with pytest.raises(ValidationError):
        open_renewal(contract, by=admin(org, alice))
    cancelled = contract_with_lines(org, status="cancelled")
    with pytest.raises(ValidationError):
        open_renewal(cancelled, by=admin(org, alice))


# --- closing ---------------------------------------------------------------------------------------


def two_product_contract(org, **kwargs):
    core, addon = ProductFactory(organization=org, sku="CORE"), ProductFactory(organization=org, sku="ADD")
    contract = contract_with_lines(org, lines=[(core, "100", "333.33", "0.15"), (addon, "1", "12000", "0.1")], **kwargs)
    return contract, core, addon


def test_renewed_copies_the_lines_into_a_successor(org, alice):
    contract, core, addon = two_product_contract(org)
    renewal = renewal_for(contract)
    closed = close_renewal(renewal, outcome="renewed", by=admin(org, alice), closed_on=dt.date(2026, 12, 1))
    successor = closed.successor_contract
    assert successor.number == f"{contract.number}-R1"
    assert (successor.start_date, successor.end_date) == (dt.date(2027, 1, 1), dt.date(2027, 12, 31))
    assert closed.new_arr == closed.current_arr == successor.arr == contract.arr
    assert (closed.outcome, closed.stage, closed.timing, closed.churn_reason) == ("renewed", "won", "on_time", None)
    assert set(closed.line_changes.values_list("kind", flat=True)) == {"unchanged"}
    assert ContractLine.objects.for_org(org).filter(contract=successor).count() == 2
    audit = dict(RenewalForecastChange.objects.for_org(org).values_list("field", "new_value"))
    assert audit == {"stage": "won", "outcome": "renewed"}


def test_expanded_bridge_sums_to_the_cent_with_discounts(org, alice):
    contract, core, addon = two_product_contract(org)
    extra = ProductFactory(organization=org, sku="NEW")
    lines = [
        {"product": core.pk, "quantity": "117", "annual_unit_price": "333.33", "discount": "0.15"},  # quantity
        {"product": addon.pk, "quantity": "1", "annual_unit_price": "12480", "discount": "0.125"},  # price
        {"product": extra, "quantity": "3", "annual_unit_price": "99.99", "discount": "0.0333"},  # added
    ]
    closed = close_renewal(renewal_for(contract), outcome="expanded", lines=lines, by=admin(org, alice))
    changes = {c.product_id: c for c in closed.line_changes.all()}
    assert {p: c.kind for p, c in changes.items()} == {core.pk: "quantity", addon.pk: "price", extra.pk: "added"}
    assert sum(c.delta for c in changes.values()) == closed.new_arr - closed.current_arr
    assert closed.new_arr == closed.successor_contract.arr
    assert closed.new_arr == sum(
        ContractLine.objects.for_org(org).filter(contract=closed.successor_contract).values_list("arr", flat=True)
    )
    bridge = renewal_bridge(closed)
    assert bridge["current_arr"] + sum(bridge["by_kind"].values()) == bridge["new_arr"]
    assert bridge["by_kind"]["added"] == changes[extra.pk].new_arr


def test_contracted_by_dropping_a_product_keeps_the_logo(org, alice):
    contract, core, addon = two_product_contract(org)
    lines = [{"product": core.pk, "quantity": "100", "annual_unit_price": "333.33", "discount": "0.15"}]
    with pytest.raises(ValidationError) as exc:
        close_renewal(renewal_for(contract), outcome="contracted", lines=lines, by=admin(org, alice))
    assert "churn_reason" in exc.value.message_dict
    renewal = Renewal.objects.for_org(org).get()
    closed = close_renewal(
        renewal, outcome="contracted", lines=lines, churn_reason="price", churn_notes="Too pricey", by=admin(org, alice)
    )
    kinds = dict(closed.line_changes.values_list("product_id", "kind"))
    assert kinds == {core.pk: "unchanged", addon.pk: "dropped"}
    assert closed.new_arr - closed.current_arr == closed.line_changes.get(product=addon).delta < 0
    assert (closed.churn_reason.code, closed.avoidable, closed.churn_notes) == ("price", True, "Too pricey")
    account = Account.objects.for_org(org).get(pk=contract.account_id)
    assert account.churned_at is None and account.lifecycle_stage != "churned"


def test_contracted_with_fewer_seats_at_a_new_price(org, alice):
    contract, core, addon = two_product_contract(org)
    lines = [
        {"product": core.pk, "quantity": "80", "annual_unit_price": "340", "discount": "0.15"},
        {"product": addon.pk, "quantity": "1", "annual_unit_price": "12000", "discount": "0.1"},
    ]
    closed = close_renewal(
        renewal_for(contract), outcome="contracted", lines=lines, churn_reason=reason(org, "budget_cut").pk,
        by=admin(org, alice),
    )  # fmt: skip
    assert dict(closed.line_changes.values_list("product_id", "kind")) == {
        core.pk: "quantity_price",
        addon.pk: "unchanged",
    }
    assert sum(closed.line_changes.values_list("delta", flat=True)) == closed.new_arr - closed.current_arr


def test_churned_ends_the_account_with_an_unavoidable_reason(org, alice):
    contract, core, addon = two_product_contract(org)
    closed = close_renewal(
        renewal_for(contract), outcome="churned", churn_reason="acquired_merged", by=admin(org, alice),
        closed_on=dt.date(2027, 1, 15),
    )  # fmt: skip
    assert (closed.new_arr, closed.successor_contract, closed.stage, closed.timing) == (0, None, "lost", "late")
    assert closed.avoidable is False
    assert set(closed.line_changes.values_list("kind", flat=True)) == {"dropped"}
    assert sum(closed.line_changes.values_list("delta", flat=True)) == -closed.current_arr
    account = Account.objects.for_org(org).get(pk=contract.account_id)
    assert (account.churned_at, account.lifecycle_stage) == (dt.date(2027, 1, 1), "churned")
    contract.refresh_from_db()
    assert contract.end_date == END  # its ARR ends with its own end date
    assert Contract.objects.for_org(org).filter(account_id=contract.account_id).count() == 1


def test_churning_one_contract_keeps_an_account_with_another_running(org, alice):
    account = AccountFactory(organization=org)
    lost = contract_with_lines(org, account=account, end=END)
    contract_with_lines(org, account=account, start=dt.date(2026, 6, 1), end=dt.date(2027, 5, 31))
    close_renewal(renewal_for(lost), outcome="churned", churn_reason="product_fit", by=admin(org, alice))
    account.refresh_from_db()
    assert account.churned_at is None


def test_outcome_must_match_the_numbers(org, alice):
    contract, core, addon = two_product_contract(org)
    renewal = renewal_for(contract)
    actor = admin(org, alice)
    more = [{"product": core.pk, "quantity": "200", "annual_unit_price": "333.33", "discount": "0.15"}]
    cases = [
        ({"outcome": "renewed", "lines": more}, "outcome"),
        ({"outcome": "contracted", "churn_reason": "price"}, "outcome"),  # a copy is not a contraction
        ({"outcome": "expanded", "lines": []}, "outcome"),  # nothing left: that is a churn
        ({"outcome": "churned", "lines": more, "churn_reason": "price"}, "lines"),
        ({"outcome": "churned"}, "churn_reason"),
        ({"outcome": "expanded", "lines": more, "churn_reason": "price"}, "churn_reason"),
        ({"outcome": "churned", "churn_reason": "no_such_reason"}, "churn_reason"),
        ({"outcome": "won"}, "outcome"),
        ({"outcome": "renewed", "start_date": dt.date(2025, 1, 1)}, "start_date"),
        ({"outcome": "renewed", "end_date": dt.date(2026, 6, 1)}, "end_date"),
        ({"outcome": "renewed", "lines": [{"product": 10**9, "quantity": "1", "annual_unit_price": "1"}]},
         "lines.0.product"),
        ({"outcome": "renewed",
          "lines": [{"product": core.pk, "quantity": "1", "annual_unit_price": "1", "discount": "2"}]},
         "lines.0.discount"),
    ]  # fmt: skip
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as exc:
            close_renewal(renewal, by=actor, **kwargs)
        assert field in exc.value.message_dict, (kwargs, exc.value.message_dict)
    renewal.refresh_from_db()
    assert renewal.is_open
    assert not RenewalLineChange.objects.for_org(org).exists()
    assert Contract.objects.for_org(org).count() == 1


def test_retired_reason_is_refused_and_closing_twice_too(org, alice):
    contract = contract_with_lines(org)
    reason_row = reason(org, "price")
    reason_row.is_active = False
    reason_row.save()
    renewal = renewal_for(contract)
    with pytest.raises(ValidationError):
        close_renewal(renewal, outcome="churned", churn_reason="price", by=admin(org, alice))
    close_renewal(renewal, outcome="renewed", by=admin(org, alice))
    with pytest.raises(ValidationError) as exc:
        close_renewal(renewal, outcome="renewed", by=admin(org, alice))
    assert "outcome" in exc.value.message_dict
    with pytest.raises(ValidationError):
        update_forecast(renewal, by=admin(org, alice), probability=10)


def test_early_renewal_cuts_the_old_contract_so_arr_is_not_doubled(org, alice):
    from accounts.services import arr_at

    contract = contract_with_lines(org)
    closed = close_renewal(
        renewal_for(contract), outcome="renewed", start_date=dt.date(2026, 11, 1), by=admin(org, alice),
        closed_on=dt.date(2026, 10, 20),
    )  # fmt: skip
    assert closed.timing == "early"
    assert closed.successor_contract.end_date == dt.date(2027, 10, 31)
    contract.refresh_from_db()
    assert contract.end_date == dt.date(2026, 10, 31)
    assert closed.due_date == END
    assert arr_at(org, dt.date(2026, 11, 15))[contract.account_id] == Decimal("10000.00")


def test_late_renewal_and_successor_numbers(org, alice):
    contract = contract_with_lines(org, number="ACME-7")
    first = close_renewal(
        renewal_for(contract), outcome="renewed", by=admin(org, alice), closed_on=dt.date(2027, 1, 20)
    )
    assert (first.timing, first.successor_contract.number) == ("late", "ACME-7-R1")
    second = close_renewal(renewal_for(first.successor_contract), outcome="renewed", by=admin(org, alice))
    assert second.successor_contract.number == "ACME-7-R2"
    assert second.successor_contract.start_date == dt.date(2028, 1, 1)


def test_closing_refreshes_the_accounts_current_arr(org, alice, django_capture_on_commit_callbacks):
    contract = contract_with_lines(
        org, start=dt.date.today() - dt.timedelta(days=300), end=dt.date.today() + dt.timedelta(days=64)
    )
    renewal = renewal_for(contract)
    with django_capture_on_commit_callbacks(execute=True):
        close_renewal(renewal, outcome="churned", churn_reason="competitor", by=admin(org, alice))
    account = Account.objects.for_org(org).get(pk=contract.account_id)
    assert account.arr == Decimal("10000.00")  # still live until its end date
    assert account.churned_at == contract.end_date + dt.timedelta(days=1)


def test_close_permissions(org, bob, make_member):
    contract = contract_with_lines(org, owner=bob)
    renewal = renewal_for(contract)
    other = make_member(org, "csm").user
    with pytest.raises(RenewalPermissionDenied):
        close_renewal(renewal, outcome="renewed", by=Actor(organization=org, role="csm", user=other))
    with pytest.raises(RenewalPermissionDenied):
        close_renewal(renewal, outcome="renewed", by=Actor(organization=org, role="viewer", user=UserFactory()))
    closed = close_renewal(renewal, outcome="renewed", by=Actor(organization=org, role="csm", user=bob))
    assert closed.closed_by == bob
    # A renewal assigned to a CSM is theirs to work even on an account they do not own.
    contract2 = contract_with_lines(org, start=dt.date(2026, 2, 1), end=dt.date(2027, 1, 31))
    assigned = renewal_for(contract2, owner=other)
    update_forecast(assigned, by=Actor(organization=org, role="csm", user=other), probability=90)


def test_contract_factory_sanity(org):
    contract = ContractFactory(account__organization=org)
    assert contract.organization == org


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_create_each_renewal_once():
    """Two runs at the same moment (two connections): the unique constraint plus ON CONFLICT DO NOTHING."""
    import threading

    from django.db import connection, connections, transaction

    from accounts.services import create_organization

    if connection.vendor != "postgresql":
        pytest.skip("needs two real connections (Postgres)")
    org = create_organization(slug="race", name="Race")[0]
    for _ in range(20):
        contract_with_lines(org, end=END)
    barrier, errors = threading.Barrier(2), []

    def run() -> None:
        try:
            with transaction.atomic():
                barrier.wait(timeout=10)
                create_due_renewals(org, today=END - dt.timedelta(days=30))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Renewal.objects.for_org(org).count() == 20
