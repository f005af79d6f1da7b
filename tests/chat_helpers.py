"""What the chat tests share (tests/test_chat.py, tests/test_chat_notifications.py): loopback allowed for the
local receiver, fresh outbound budgets, a recorder of queued tries, a channel on the receiver and
a red account with 125,000 of ARR. A test module imports the ``*_fixture`` functions (pytest finds them
by their ``name``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Account
from accounts.services import refresh_current_arr
from playbooks import chat
from playbooks.models import ChatChannel

from .factories import AccountFactory, ContractFactory, ContractLineFactory
from .outbound_helpers import Receiver, clear_outbound_budgets
from .signal_factories import HealthScoreFactory

SECRET_PATH = "/services/T000/B000/XyZsecretTOKEN9Qz"


@pytest.fixture(autouse=True, name="chat_allows_loopback")
def chat_allows_loopback_fixture(settings):
    """The receiver is on 127.0.0.1; links in messages point at a public base URL."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    settings.PUBLIC_BASE_URL = "https://retain.example"


@pytest.fixture(autouse=True, name="fresh_budgets")
def fresh_budgets_fixture(org, other_org):
    clear_outbound_budgets(org.pk, other_org.pk)
    yield
    clear_outbound_budgets(org.pk, other_org.pk)


class Recorder:
    """Stands in for the queueing of a chat try: records (organization, delivery, attempt, countdown)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int, float]] = []

    def __call__(self, organization_id: int, delivery_id: int, attempt: int, countdown: float) -> None:
        self.calls.append((organization_id, delivery_id, attempt, countdown))


def channel(org, receiver: Receiver, kind: str = "slack", path: str = SECRET_PATH, **fields) -> ChatChannel:
    return chat.create_channel(org, webhook_url=receiver.url(path), kind=kind,
                               name=fields.pop("name", f"#cs-{kind}"), **fields)  # fmt: skip


def red_account(org, django_capture_on_commit_callbacks, **fields) -> Account:
    """An account with 125,000 of ARR and a red score (38); its creation's commit hooks are held back and its
    ARR refreshed, as it would be before a worker ran."""
    with django_capture_on_commit_callbacks(execute=False):
        account = AccountFactory(organization=org, name=fields.pop("name", "Globex & <Co>"), **fields)
        today = timezone.localdate()
        contract = ContractFactory(account=account, start_date=today - dt.timedelta(days=30),
                                   end_date=today + dt.timedelta(days=300))  # fmt: skip
        ContractLineFactory(contract=contract, quantity=Decimal("125"), annual_unit_price=Decimal("1000"))
        HealthScoreFactory(account=account, score=Decimal("38.0"), color="red", computed_color="red")
    refresh_current_arr(org, account_ids=[account.pk])
    return account
