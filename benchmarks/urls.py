"""URLconf used only by the benchmarks: the real API plus the naive baseline endpoint."""

from __future__ import annotations

from django.urls import path

from accounts.api.views import AccountViewSet
from accounts.models import Account
from cs_platform.urls import urlpatterns as real_urlpatterns


class NaiveAccountViewSet(AccountViewSet):
    """The same accounts list (filters, ordering, pagination, serializer) without ``select_related``.

    This is what a first-draft DRF viewset looks like: the serializer then reads each row's owner and
    parent with one query each (N+1).
    """

    queryset = Account.all_orgs.all()


urlpatterns = [
    *real_urlpatterns,
    path("bench/naive/accounts/", NaiveAccountViewSet.as_view({"get": "list"})),
]
