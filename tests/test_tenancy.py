"""The fail-closed tenancy contract of cs_platform.tenancy."""

import pytest

from accounts.models import Account
from cs_platform.tenancy import OrgScopeError, org_scope
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
