"""The fail-closed tenancy contract of cs_platform.tenancy."""

import pytest
from django.utils.deprecation import RemovedInDjango60Warning

from accounts.models import Account, Organization
from cs_platform.tenancy import OrgScopedManager, OrgScopedQuerySet, OrgScopeError, current_org_id, org_scope
from tests.factories import AccountFactory


@pytest.mark.django_db
def test_scoped_manager_refuses_to_query_without_organization(org):
    AccountFactory(organization=org)
    with pytest.raises(OrgScopeError):
        list(Account.objects.all())


@pytest.mark.django_db
def test_scope_limits_rows_to_the_organization(org, other_org):
    mine = AccountFactory(organization=org)
    AccountFactory(organization=other_org)
    with org_scope(org):
        assert list(Account.objects.values_list("id", flat=True)) == [mine.id]
    assert list(Account.objects.for_org(other_org).values_list("organization_id", flat=True)) == [other_org.id]


@pytest.mark.django_db
def test_saving_into_another_organization_inside_a_scope_raises(org, other_org):
    with org_scope(org), pytest.raises(OrgScopeError):
        Account(organization=other_org, name="x").save()
    with org_scope(org):
        created = Account(name="filled in from scope")
        created.save()
    assert created.organization_id == org.id


@pytest.mark.django_db
def test_saving_without_an_organization_outside_any_scope_raises(org):
    assert current_org_id() is None
    with pytest.raises(OrgScopeError, match="^Account saved without an organization$"):
        Account(name="orphan").save()
    assert not Account.all_orgs.filter(name="orphan").exists()


@pytest.mark.django_db
def test_saving_into_another_organization_names_both(org, other_org):
    with org_scope(org), pytest.raises(OrgScopeError) as raised:
        Account(organization=other_org, name="x").save()
    assert str(raised.value) == f"Account of organization {other_org.id} saved in scope {org.id}"
    assert not Account.all_orgs.filter(name="x").exists()


@pytest.mark.django_db
def test_saving_a_row_of_the_scope_or_outside_any_scope_keeps_its_organization(org, other_org):
    with org_scope(org):
        inside = Account(organization=org, name="inside")
        inside.save()
    outside = Account(organization=other_org, name="outside")
    outside.save()  # no scope: the explicit organization stands
    assert Account.all_orgs.get(pk=inside.pk).organization_id == org.id
    assert Account.all_orgs.get(pk=outside.pk).organization_id == other_org.id


@pytest.mark.django_db
def test_scopes_nest_and_restore_the_outer_organization(org, other_org):
    mine, theirs = AccountFactory(organization=org), AccountFactory(organization=other_org)
    assert current_org_id() is None
    with org_scope(org) as outer:
        assert outer == org.id == current_org_id()
        with org_scope(other_org.id) as inner:  # an id works as well as an organization
            assert inner == other_org.id == current_org_id()
            assert list(Account.objects.values_list("id", flat=True)) == [theirs.id]
        assert current_org_id() == org.id
        assert list(Account.objects.values_list("id", flat=True)) == [mine.id]
    assert current_org_id() is None


@pytest.mark.django_db
def test_scope_is_restored_when_the_block_raises(org):
    with pytest.raises(ZeroDivisionError), org_scope(org):
        1 / 0  # noqa: B018
    assert current_org_id() is None


def test_an_unsaved_organization_cannot_scope_anything():
    with pytest.raises(OrgScopeError, match="^organization has no primary key$"), org_scope(Organization()):
        pass
    with pytest.raises(OrgScopeError, match="^organization has no primary key$"):
        Account.objects.for_org(Organization())
    assert current_org_id() is None


@pytest.mark.django_db
def test_for_org_takes_an_id_and_ignores_the_ambient_scope(org, other_org):
    mine, theirs = AccountFactory(organization=org), AccountFactory(organization=other_org)
    with org_scope(org):
        assert list(Account.objects.for_org(other_org.id).values_list("id", flat=True)) == [theirs.id]
    assert list(Account.objects.for_org(org).values_list("id", flat=True)) == [mine.id]


def test_the_refusal_names_the_model_and_the_ways_out():
    with pytest.raises(OrgScopeError) as raised:
        Account.objects.all()
    assert str(raised.value) == (
        "No organization in scope for Account: use org_scope(org), Account.objects.for_org(org), "
        "or the explicit all_orgs manager."
    )


def test_scoped_querysets_are_org_scoped_querysets_on_the_managers_database():
    with org_scope(1):
        queryset = Account.objects.all()
    assert isinstance(queryset, OrgScopedQuerySet) and queryset.db == "default"
    assert isinstance(Account.objects.for_org(1), OrgScopedQuerySet)
    assert 'WHERE "accounts_account"."organization_id" = 1' in str(queryset.query).replace("`", '"')


def test_the_unscoped_manager_is_the_default_and_base_manager():
    assert Account._meta.default_manager.name == "all_orgs"
    assert Account._meta.base_manager.name == "all_orgs"
    assert isinstance(Account.objects, OrgScopedManager)


def test_a_manager_bound_to_a_database_keeps_it_when_scoping():
    # Read replicas: Account.objects.db_manager("replica") must not fall back to the default database.
    manager = Account.objects.db_manager("replica")
    assert manager.for_org(1).db == "replica"
    with org_scope(1):
        assert manager.all().db == "replica"


@pytest.mark.django_db
def test_save_passes_its_arguments_through(org):
    account = AccountFactory(organization=org, name="Before", domain="before.example")
    Account.all_orgs.filter(pk=account.pk).update(domain="changed-elsewhere.example")
    account.name = "After"
    account.save(update_fields=["name"])  # only the name is written
    assert Account.all_orgs.values_list("name", "domain").get(pk=account.pk) == ("After", "changed-elsewhere.example")
    account.name = "Positional"
    with pytest.warns(RemovedInDjango60Warning):  # Django 5.2 still accepts save(force_insert, ..., update_fields)
        account.save(False, False, None, ["name"])
    assert Account.all_orgs.values_list("name", "domain").get(pk=account.pk) == (
        "Positional",
        "changed-elsewhere.example",
    )
