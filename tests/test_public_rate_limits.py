"""Public pages are rate-limited per client address (issue 16 §5; cs_platform/ratelimit.py).

Each public door is checked: the unsubscribe link (/u/), invitation links (/invitations/), password sign-in
(POST /login/, across user names), and the two that count in their own code, the survey page (/s/) and
the inbound hooks (/hooks/). The budget is per address: another address is still served.
"""

from __future__ import annotations

import uuid

import pytest
from django.core.cache import cache
from django.test import Client, override_settings

from accounts.mailing import unsubscribe_token
from health.inbound import enable_hook
from tests.factories import AccountFactory, ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()  # the budgets are counted in the cache; start each test with none spent
    yield
    cache.clear()


def from_address(address: str) -> Client:
    return Client(REMOTE_ADDR=address)


def test_the_unsubscribe_link_is_limited_per_address(org, settings):
    settings.UNSUBSCRIBE_PAGE_RATE = "3/min"
    contact = ContactFactory(organization=org, account=AccountFactory(organization=org))
    url = f"/u/{unsubscribe_token(contact)}/"
    client = from_address("203.0.113.7")
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get(url)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert "Too many requests" in refused.content.decode()
    assert client.post(url).status_code == 429  # the one-click POST too: nothing was unsubscribed
    assert from_address("203.0.113.8").get(url).status_code == 200  # another address has its own budget


def test_invitation_links_are_limited_per_address(db, settings):
    settings.INVITATION_PAGE_RATE = "2/min"
    client = from_address("198.51.100.4")
    # Guessing tokens: each is a 404 until the budget is spent, then 429 before any lookup.
    codes = [client.get(f"/invitations/{uuid.uuid4().hex}/").status_code for _ in range(3)]
    assert codes == [404, 404, 429]


def test_password_sign_in_is_limited_per_address_across_user_names(db, settings, make_member, org):
    settings.LOGIN_RATE = "4/min"
    client = from_address("192.0.2.50")
    # Four different user names: django-axes' per-name budget (5) is never reached, the address's is.
    for n in range(4):
        response = client.post("/login/", {"username": f"user{n}@example.com", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    refused = client.post("/login/", {"username": "user9@example.com", "password": "wrong"})
    assert refused.status_code == 429 and "Retry-After" in refused
    assert client.get("/login/").status_code == 200  # reading the form is not counted
    assert from_address("192.0.2.51").post("/login/", {"username": "x@example.com", "password": "y"}).status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(db, settings):
    settings.INVITATION_PAGE_RATE = "1/min"
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = Client(REMOTE_ADDR="10.0.0.2")  # every request arrives from the proxy
    first = proxy.get(f"/invitations/{uuid.uuid4().hex}/", HTTP_X_FORWARDED_FOR="203.0.113.1")
    second = proxy.get(f"/invitations/{uuid.uuid4().hex}/", HTTP_X_FORWARDED_FOR="203.0.113.2")
    again = proxy.get(f"/invitations/{uuid.uuid4().hex}/", HTTP_X_FORWARDED_FOR="203.0.113.1")
    assert (first.status_code, second.status_code, again.status_code) == (404, 404, 429)


def test_the_survey_page_and_inbound_hooks_have_their_own_budgets(org, settings):
    settings.SURVEY_PAGE_RATE = "2/min"
    client = from_address("203.0.113.9")
    codes = [client.get(f"/s/{uuid.uuid4().hex}/").status_code for _ in range(3)]
    assert codes[-1] == 429 and codes[:2] != [429, 429]
    settings.INBOUND_HOOK_RATE = "2/min"
    enable_hook(org.pk, "tracker")
    hook = f"/hooks/{org.slug}/tracker/"
    unsigned = [client.post(hook, data=b"{}", content_type="application/json").status_code for _ in range(3)]
    assert unsigned == [401, 401, 429]


def test_budgets_fail_open_while_the_cache_is_unreachable(db, settings):
    # A Redis cache on a port where nothing listens: counting raises redis' ConnectionError. The budget lets the
    # request through (and logs it) instead of failing the page; with a limit of one, a working cache would have
    # refused the second and third requests.
    settings.INVITATION_PAGE_RATE = "1/min"
    unreachable = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    client = from_address("198.51.100.9")
    with override_settings(CACHES=unreachable):  # restored before the fixture clears the real cache
        codes = [client.get(f"/invitations/{uuid.uuid4().hex}/").status_code for _ in range(3)]
    assert codes == [404, 404, 404]
