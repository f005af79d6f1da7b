"""ARR at a date, current ARR kept in step with contracts, hierarchy roll-up, capacity, role rules."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Account, ContractLine
from accounts.services import Actor, arr_at, capacity_by_csm, refresh_current_arr
from tests.factories import AccountFactory, ContractFactory, ContractLineFactory, MembershipFactory, TeamFactory

D = Decimal


@pytest.mark.django_db
def test_line_arr_is_quantity_times_price_times_one_minus_discount(org):
    line = ContractLineFactory(
        contract=ContractFactory(account=AccountFactory(organization=org)),
        quantity=D("12"),
        annual_unit_price=D("1234.56"),
        discount=D("0.1500"),
    )
    # 12 × 1234.56 × 0.85 = 12592.512 → 12592.51
    assert line.arr == D("12592.51")


@pytest.mark.django_db
def test_arr_at_counts_both_ends_inclusive_and_skips_cancelled(org):
    acct = AccountFactory(organization=org)
    live = ContractFactory(account=acct, start_date=dt.date(2025, 1, 1), end_date=dt.date(2025, 12, 31))
    ContractLineFactory(contract=live, quantity=D("1"), annual_unit_price=D("100"))
    cancelled = ContractFactory(
        account=acct, start_date=dt.date(2025, 1, 1), end_date=dt.date(2025, 12, 31), status="cancelled"
    )
    ContractLineFactory(contract=cancelled, quantity=D("1"), annual_unit_price=D("999"))

    assert arr_at(org, dt.date(2025, 1, 1)) == {acct.id: D("100.00")}
    assert arr_at(org, dt.date(2025, 12, 31)) == {acct.id: D("100.00")}
    assert arr_at(org, dt.date(2026, 1, 1)) == {}
    assert arr_at(org, dt.date(2024, 12, 31)) == {}


@pytest.mark.django_db
def test_refresh_rolls_children_up_into_parents(org):
    today = dt.date(2026, 6, 1)
    root = AccountFactory(organization=org)
    child = AccountFactory(organization=org, parent=root)
    grandchild = AccountFactory(organization=org, parent=child)
    for acct, price in [(root, "10"), (child, "20"), (grandchild, "40")]:
        contract = ContractFactory(account=acct, start_date=dt.date(2026, 1, 1), end_date=dt.date(2026, 12, 31))
        ContractLineFactory(contract=contract, quantity=D("1"), annual_unit_price=D(price))

    refresh_current_arr(org, today=today)
    values = {a.id: (a.arr, a.hierarchy_arr) for a in Account.objects.for_org(org)}
    assert values[root.id] == (D("10.00"), D("70.00"))
    assert values[child.id] == (D("20.00"), D("60.00"))
    assert values[grandchild.id] == (D("40.00"), D("40.00"))

    # Refreshing just the grandchild after a change walks up to its ancestors.
    ContractLine.objects.for_org(org).filter(contract__account=grandchild).update(arr=D("50.00"))
    assert refresh_current_arr(org, account_ids=[grandchild.id], today=today) == 3
    root.refresh_from_db()
    assert root.hierarchy_arr == D("80.00")


@pytest.mark.django_db
def test_refresh_does_not_touch_other_organizations(org, other_org):
    theirs = AccountFactory(organization=other_org)
    contract = ContractFactory(account=theirs, start_date=dt.date(2026, 1, 1), end_date=dt.date(2026, 12, 31))
    ContractLineFactory(contract=contract)
    refresh_current_arr(org, today=dt.date(2026, 6, 1))
    theirs.refresh_from_db()
    assert theirs.arr == D("0")


@pytest.mark.django_db(transaction=True)
def test_current_arr_follows_contract_changes_after_commit(org):
    acct = AccountFactory(organization=org)
    today = dt.date.today()
    contract = ContractFactory(
        account=acct, start_date=today - dt.timedelta(days=10), end_date=today + dt.timedelta(days=30)
    )
    line = ContractLineFactory(contract=contract, quantity=D("3"), annual_unit_price=D("100"))
    acct.refresh_from_db()
    assert acct.arr == D("300.00")
    assert acct.next_renewal_date == contract.end_date
    line.delete()
    acct.refresh_from_db()
    assert acct.arr == D("0.00")
    assert acct.next_renewal_date is None


@pytest.mark.django_db
def test_capacity_flags_books_over_their_targets(org, make_member):
    busy = make_member(org, "csm").user
    calm = make_member(org, "csm").user
    AccountFactory.create_batch(16, organization=org, owner=busy, touch_model="high")  # max 15
    AccountFactory.create_batch(3, organization=org, owner=calm, touch_model="high")
    books = {row["owner_id"]: row for row in capacity_by_csm(org)}
    assert books[busy.id]["over_capacity"] is True
    assert books[busy.id]["accounts"] == 16
    assert books[calm.id]["over_capacity"] is False
    assert books[calm.id]["load"] == pytest.approx(3 / 15)


@pytest.mark.django_db
def test_role_rules_for_writing_accounts(org, other_org, make_member):
    leader = make_member(org, "leader").user
    team = TeamFactory(organization=org, manager=leader)
    in_team = MembershipFactory(organization=org, role="csm", team=team).user
    outside = make_member(org, "csm").user
    team_account = AccountFactory(organization=org, owner=in_team)
    other_account = AccountFactory(organization=org, owner=outside)
    foreign = AccountFactory(organization=other_org)

    leader_actor = Actor(organization=org, role="leader", user=leader)
    assert leader_actor.can_write_account(team_account)
    assert not leader_actor.can_write_account(other_account)
    csm_actor = Actor(organization=org, role="csm", user=outside)
    assert csm_actor.can_write_account(other_account)
    assert not csm_actor.can_write_account(team_account)
    admin_actor = Actor(organization=org, role="admin", user=leader)
    assert admin_actor.can_write_account(other_account)
    assert not admin_actor.can_write_account(foreign)
    assert not Actor(organization=org, role="viewer", user=outside).can_write_account(other_account)


@pytest.mark.django_db
def test_scheduled_arr_refresh_fans_out_per_organization_and_records_each_run(org, other_org, eager):
    from accounts.choices import JobStatus
    from accounts.models import JobRun
    from accounts.tasks import refresh_all_current_arr

    today = dt.date.today()
    accounts = []
    for organization in (org, other_org):
        acct = AccountFactory(organization=organization)
        contract = ContractFactory(
            account=acct, start_date=today - dt.timedelta(days=30), end_date=today + dt.timedelta(days=30)
        )
        ContractLineFactory(contract=contract, quantity=D("2"), annual_unit_price=D("50"))
        accounts.append(acct)
    Account.all_orgs.filter(id__in=[a.id for a in accounts]).update(arr=D("0"))  # stale, as after midnight

    assert refresh_all_current_arr() == 2
    for acct in accounts:
        acct.refresh_from_db()
        assert acct.arr == D("100.00")
        run = JobRun.objects.for_org(acct.organization_id).get(kind="refresh_current_arr")
        assert run.status == JobStatus.SUCCEEDED
        assert run.counts == {"accounts_changed": 1}
