"""Factories and builders for renewals tests (kept apart from tests/factories.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import factory

from renewals.models import ChurnReason, Renewal, RenewalTarget

from .factories import AccountFactory, ContractFactory, ContractLineFactory, ProductFactory, TenantFactory


class RenewalFactory(TenantFactory):
    class Meta:
        model = Renewal

    contract = factory.SubFactory(ContractFactory)
    organization = factory.SelfAttribute("contract.organization")
    account = factory.SelfAttribute("contract.account")
    owner = factory.SelfAttribute("contract.account.owner")
    due_date = factory.SelfAttribute("contract.end_date")
    current_arr = factory.SelfAttribute("contract.arr")
    forecast_arr = factory.SelfAttribute("contract.arr")


class RenewalTargetFactory(TenantFactory):
    class Meta:
        model = RenewalTarget

    quarter_start = factory.Sequence(lambda n: dt.date(2020 + n // 4, 1 + 3 * (n % 4), 1))
    target_arr = Decimal("100000")


def reason(org: Any, code: str) -> ChurnReason:
    return ChurnReason.objects.for_org(org).get(code=code)


def contract_with_lines(
    org: Any,
    *,
    account: Any = None,
    owner: Any = None,
    start: dt.date = dt.date(2026, 1, 1),
    end: dt.date = dt.date(2026, 12, 31),
    lines: list[tuple[Any, str, str, str]] | None = None,
    **kwargs: Any,
):
    """A contract with lines given as (product or None, quantity, unit price, discount); ARR refreshed."""
    account = account or AccountFactory(organization=org, owner=owner)
    contract = ContractFactory(account=account, organization=org, start_date=start, end_date=end, **kwargs)
    for product, quantity, price, discount in lines or [(None, "10", "1000", "0")]:
        ContractLineFactory(
            contract=contract,
            organization=org,
            product=product or ProductFactory(organization=org),
            quantity=Decimal(quantity),
            annual_unit_price=Decimal(price),
            discount=Decimal(discount),
        )
    contract.refresh_from_db()
    contract.arr = sum(line.arr for line in contract.lines.all())
    contract.save(update_fields=["arr"])
    return contract


def renewal_for(contract: Any, **kwargs: Any) -> Renewal:
    return RenewalFactory(contract=contract, organization=contract.organization, **kwargs)
