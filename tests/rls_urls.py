"""A URL configuration for tests/test_rls.py: Retain's own, plus page views with an injected tenancy bug
(queries that skip the organization filter), to prove that row-level security catches them."""

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

from accounts.models import Account
from cs_platform.pages import org_page
from cs_platform.urls import handler400, handler403, handler404, handler500
from cs_platform.urls import urlpatterns as retain_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


@org_page()
def raw_unscoped(request: HttpRequest) -> JsonResponse:
    """The bug: raw SQL over the accounts table, no organization in the WHERE clause."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT organization_id, name FROM {Account._meta.db_table} ORDER BY name")
        rows = cursor.fetchall()
    return JsonResponse({"rows": [[org_id, name] for org_id, name in rows]})


@org_page()
def orm_unscoped(request: HttpRequest) -> JsonResponse:
    """The bug: the explicit bypass manager, unfiltered."""
    rows = list(Account.all_orgs.order_by("name").values_list("organization_id", "name"))
    return JsonResponse({"rows": [list(row) for row in rows]})


urlpatterns = [
    path("o/<slug:org_slug>/rls-probe/raw/", raw_unscoped),
    path("o/<slug:org_slug>/rls-probe/orm/", orm_unscoped),
    *retain_urlpatterns,
]
