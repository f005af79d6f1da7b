"""Issue 12 §8, left over: "an account renewed early still shows its old contract's renewal date as next
renewal". Checked where a user reads it — My book, the accounts list, the API — after the two ways a renewal
is recorded early, without any manual refresh: closing the renewal with an early successor, and posting the
successor contract through the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Account
from accounts.services import Actor
from renewals.services import close_renewal

from .factories import ProductFactory
from .renewal_factories import contract_with_lines, renewal_for

pytestmark = pytest.mark.django_db


def shown_next_renewal(client, api_client, org, account) -> dict[str, dt.date | None]:
    book = client.get(reverse("my-book", args=[org.slug]), {"scope": "mine"})
    everyone = client.get(reverse("my-book", args=[org.slug]), {"scope": "all"})
    body = api_client.get(f"/api/v1/accounts/{account.pk}/").json()
    return {
        "my book": next(a.next_renewal_date for a in book.context["accounts"] if a.pk == account.pk),
        "accounts list": next(a.next_renewal_date for a in everyone.context["accounts"] if a.pk == account.pk),
        "api": dt.date.fromisoformat(body["next_renewal_date"]) if body["next_renewal_date"] else None,
    }


def old_contract(org, bob):
    today = timezone.localdate()
    contract = contract_with_lines(
        org, owner=bob, start=today - dt.timedelta(days=300), end=today + dt.timedelta(days=64), number="OLD-1"
    )
    from accounts.services import refresh_current_arr

    refresh_current_arr(org)
    assert Account.objects.for_org(org).get(pk=contract.account_id).next_renewal_date == contract.end_date
    return contract


def test_closing_a_renewal_early_moves_next_renewal_everywhere(
    client, api, org, alice, bob, django_capture_on_commit_callbacks
):
    contract = old_contract(org, bob)
    start = timezone.localdate() + dt.timedelta(days=10)  # the new term starts before the old one's end
    with django_capture_on_commit_callbacks(execute=True):
        closed = close_renewal(
            renewal_for(contract),
            outcome="renewed",
            start_date=start,
            end_date=start + dt.timedelta(days=364),
            by=Actor(organization=org, role="admin", user=alice),
        )
    assert closed.timing == "early"
    client.force_login(bob)
    expected = start + dt.timedelta(days=364)
    assert shown_next_renewal(client, api(org, "admin"), org, contract.account) == {
        "my book": expected,
        "accounts list": expected,
        "api": expected,
    }


def test_posting_an_early_successor_contract_moves_next_renewal_everywhere(
    client, api, org, bob, django_capture_on_commit_callbacks
):
    contract = old_contract(org, bob)
    start = timezone.localdate() + dt.timedelta(days=5)
    end = start + dt.timedelta(days=729)
    api_client = api(org, "admin")
    product = ProductFactory(organization=org)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(
            "/api/v1/contracts/",
            {
                "account": contract.account_id,
                "number": "NEW-1",
                "start_date": start.isoformat(),
                "end_date": end.isoformat(),
                "lines": [{"product": product.pk, "quantity": "10", "annual_unit_price": "1000.00"}],
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    client.force_login(bob)
    assert shown_next_renewal(client, api_client, org, contract.account) == {
        "my book": end,
        "accounts list": end,
        "api": end,
    }
