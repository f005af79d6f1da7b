"""Pages of the accounts app: home redirect, My book, Account 360."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from cs_platform.pages import org_page

from .filtersets import AccountFilterSet
from .models import Account
from .services import memberships_of


@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = memberships_of(request.user)
    if not memberships:
        return render(request, "accounts/no_organization.html", status=403)
    return redirect("my-book", org_slug=memberships[0].organization.slug)


@org_page()
def my_book(request: HttpRequest) -> HttpResponse:
    queryset = Account.objects.select_related("owner")
    filterset = AccountFilterSet(request.GET or None, queryset=queryset, request=request)
    accounts = filterset.qs.order_by("name")[:50]
    return render(request, "accounts/my_book.html", {"filter": filterset, "accounts": accounts})


@org_page()
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account.objects.select_related("owner", "parent"), pk=account_id)
    return render(request, "accounts/account_detail.html", {"account": account})
