"""Renewal data for page tests: accounts with contracts, open renewals across the pipeline, past losses."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from accounts.services import refresh_current_arr
from renewals.models import ChurnReason, Renewal, RenewalTarget
from tests.factories import AccountFactory, ContractFactory, ContractLineFactory, ProductFactory

CATEGORIES = ["commit", "likely", "at_risk", "upside", "churn"]


def open_renewal(org, owner, *, name: str, days: int, qty: int = 10, price: int = 1000, category: str = "likely",
                 products=None, since: dt.date | None = None, touch: str = "high") -> Renewal:  # fmt: skip
    """An account whose live contract ends in ``days`` days, with its open renewal."""
    today = timezone.localdate()
    account = AccountFactory(
        organization=org, owner=owner, name=name, touch_model=touch, customer_since=since or dt.date(2023, 3, 1)
    )
    contract = ContractFactory(
        account=account, start_date=today + dt.timedelta(days=days - 364), end_date=today + dt.timedelta(days=days)
    )
    products = products or [ProductFactory(organization=org)]
    for product in products:
        ContractLineFactory(contract=contract, product=product, quantity=Decimal(qty), annual_unit_price=Decimal(price))
    arr = Decimal(qty * price * len(products))
    return Renewal.all_orgs.create(
        organization=org,
        account=account,
        contract=contract,
        owner=owner,
        due_date=contract.end_date,
        current_arr=arr,
        forecast_arr=arr if category != "churn" else Decimal("0"),
        forecast_category=category,
    )


def churned_renewal(org, owner, *, name: str, reason_code: str, arr: int, days_ago: int = 60) -> Renewal:
    """An account that churned ``days_ago`` days ago: ended contract, renewal closed as churned."""
    today = timezone.localdate()
    end = today - dt.timedelta(days=days_ago)
    account = AccountFactory(organization=org, owner=owner, name=name, customer_since=dt.date(2022, 6, 1))
    contract = ContractFactory(account=account, start_date=end - dt.timedelta(days=364), end_date=end, status="ended")
    ContractLineFactory(contract=contract, quantity=Decimal(1), annual_unit_price=Decimal(arr))
    reason = ChurnReason.objects.for_org(org).get(code=reason_code)
    return Renewal.all_orgs.create(
        organization=org,
        account=account,
        contract=contract,
        owner=owner,
        due_date=end,
        current_arr=Decimal(arr),
        forecast_arr=Decimal("0"),
        forecast_category="churn",
        stage="lost",
        outcome="churned",
        closed_on=end,
        new_arr=Decimal("0"),
        churn_reason=reason,
        avoidable=reason.avoidable,
    )


def build_book(org, owners, n: int) -> list[Renewal]:
    """``n`` open renewals spread over the next 120 days and the categories, plus n // 3 past losses."""
    product = ProductFactory(organization=org)
    renewals = [
        open_renewal(
            org,
            owners[i % len(owners)],
            name=f"Account {n}-{i}",
            days=5 + (i * 17) % 115,
            qty=5 + i,
            category=CATEGORIES[i % len(CATEGORIES)],
            products=[product],
            since=dt.date(2022 + i % 4, 1 + i % 12, 1),
            touch=["high", "low", "tech"][i % 3],
        )
        for i in range(n)
    ]
    codes = ["competitor", "price", "out_of_business"]
    for i in range(n // 3):
        churned_renewal(org, owners[0], name=f"Gone {n}-{i}", reason_code=codes[i % 3], arr=10000 + i, days_ago=30 + i)
    today = timezone.localdate()
    RenewalTarget.all_orgs.get_or_create(
        organization=org,
        quarter_start=dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1),
        defaults={"target_arr": Decimal("50000")},
    )
    refresh_current_arr(org)
    return renewals
