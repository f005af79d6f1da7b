"""factory_boy factories: tenant-aware object graphs in one line each."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from accounts.models import (
    Account,
    Activity,
    Contact,
    Contract,
    ContractLine,
    Membership,
    Objective,
    Organization,
    Product,
    SuccessPlan,
    Team,
)

User = get_user_model()


class TenantFactory(factory.django.DjangoModelFactory):
    """Creates through the explicit ``all_orgs`` manager: factories always pass the organization."""

    class Meta:
        abstract = True

    @classmethod
    def _get_manager(cls, model_class):
        return model_class.all_orgs


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("pw-for-tests")


class TeamFactory(TenantFactory):
    class Meta:
        model = Team

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class MembershipFactory(TenantFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = "csm"


class AccountFactory(TenantFactory):
    class Meta:
        model = Account

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Account {n:05d}")
    external_id = factory.Sequence(lambda n: f"ACC-{n:05d}")
    industry = "Software"
    region = "EMEA"
    touch_model = "low"
    lifecycle_stage = "adoption"


class ContactFactory(TenantFactory):
    class Meta:
        model = Contact

    account = factory.SubFactory(AccountFactory)
    organization = factory.SelfAttribute("account.organization")
    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"contact{n}@customer.example")
    external_id = factory.Sequence(lambda n: f"CON-{n:05d}")
    roles = factory.LazyFunction(lambda: ["end_user"])
    # Known long before any as-of day a test picks (the signals count a contact from its start).
    started_on = dt.date(2020, 1, 1)


class ProductFactory(TenantFactory):
    class Meta:
        model = Product

    organization = factory.SubFactory(OrganizationFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n}")
    name = factory.Sequence(lambda n: f"Product {n}")
    product_line = "Core"


class ContractFactory(TenantFactory):
    class Meta:
        model = Contract

    account = factory.SubFactory(AccountFactory)
    organization = factory.SelfAttribute("account.organization")
    number = factory.Sequence(lambda n: f"CT-{n:05d}")
    start_date = dt.date(2026, 1, 1)
    end_date = dt.date(2026, 12, 31)


class ContractLineFactory(TenantFactory):
    class Meta:
        model = ContractLine

    contract = factory.SubFactory(ContractFactory)
    organization = factory.SelfAttribute("contract.organization")
    product = factory.SubFactory(ProductFactory, organization=factory.SelfAttribute("..organization"))
    quantity = Decimal("10")
    annual_unit_price = Decimal("1000")
    discount = Decimal("0")


class ActivityFactory(TenantFactory):
    class Meta:
        model = Activity

    account = factory.SubFactory(AccountFactory)
    organization = factory.SelfAttribute("account.organization")
    type = "call"
    occurred_at = factory.LazyFunction(lambda: dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC))
    summary = "Checked in on rollout"


class SuccessPlanFactory(TenantFactory):
    class Meta:
        model = SuccessPlan

    account = factory.SubFactory(AccountFactory)
    organization = factory.SelfAttribute("account.organization")


class ObjectiveFactory(TenantFactory):
    class Meta:
        model = Objective

    plan = factory.SubFactory(SuccessPlanFactory)
    organization = factory.SelfAttribute("plan.organization")
    title = "Roll out to the support team"
