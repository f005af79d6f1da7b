"""Shared fixtures: the Healthchecks triad, in organizations.

``org`` holds alice (admin), bob (csm) and a viewer; ``other_org`` holds charlie, who must never see
anything of ``org``. ``api`` builds an API client authenticated as a given role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey, Membership, Organization
from accounts.services import create_organization

from .factories import AccountFactory, MembershipFactory, UserFactory

# CI proves its environment (RETAIN_REQUIRE_SERVICES=1): see tests/require_services.py.
from .require_services import (  # noqa: F401  (hooks: pytest finds them by name in this module)
    pytest_make_collect_report,
    pytest_report_header,
    pytest_runtest_makereport,
    pytest_sessionstart,
)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """Factories give every user a password; PBKDF2 at full strength would dominate the suite's time."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def generous_public_page_budgets(settings) -> None:
    """The suite signs in through the form hundreds of times from one address within minutes; the per-address
    budgets of public pages (cs_platform.ratelimit) are tested with their own rates in test_public_rate_limits."""
    settings.LOGIN_RATE = settings.INVITATION_PAGE_RATE = settings.UNSUBSCRIBE_PAGE_RATE = "100000/min"


@pytest.fixture
def eager() -> Iterator[Any]:
    """Celery runs what ``.delay()`` sends at once, in this process (countdowns are ignored); restored after.
    Yields the app."""
    from cs_platform.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        yield app
    finally:
        app.conf.task_always_eager = before


@pytest.fixture
def loopback_allowed(settings) -> None:
    """The outbound guard lets calls reach 127.0.0.0/8, as an operator allows a network: for the local fake
    vendors and receivers (``pytest.mark.usefixtures("loopback_allowed")``)."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8"]


@pytest.fixture
def org(db) -> Organization:
    return create_organization(slug="acme", name="Acme Corp")[0]


@pytest.fixture
def other_org(db) -> Organization:
    return create_organization(slug="globex", name="Globex")[0]


@pytest.fixture
def make_member(db) -> Callable[..., Membership]:
    def make(organization: Organization, role: str, **user_kwargs) -> Membership:
        return MembershipFactory(organization=organization, role=role, user=UserFactory(**user_kwargs))

    return make


@pytest.fixture
def alice(org, make_member):
    return make_member(org, "admin", first_name="Alice").user


@pytest.fixture
def bob(org, make_member):
    return make_member(org, "csm", first_name="Bob").user


@pytest.fixture
def charlie(other_org, make_member):
    return make_member(other_org, "admin", first_name="Charlie").user


@pytest.fixture
def api_key(db) -> Callable[..., str]:
    def make(organization: Organization, role: str = "admin", user=None) -> str:
        return ApiKey.issue(organization=organization, role=role, user=user)[1]

    return make


@pytest.fixture
def api(api_key) -> Callable[..., APIClient]:
    def make(organization: Organization, role: str = "admin", user=None) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key(organization, role, user)}")
        return client

    return make


@pytest.fixture
def account(org, bob):
    return AccountFactory(organization=org, owner=bob)
