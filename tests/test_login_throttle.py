"""Sign-in throttling (issue 10 §6) and the Django admin in production (issue 18, finding 13).

django-axes counts failed sign-ins per user name and client address: after ``AXES_FAILURE_LIMIT``
failures the pair is refused, even with the right password, until the cool-off has passed, with a
clear message on the sign-in page. Admins of the organization (Members page) and the operator
(``axes_reset_username``) can unlock. API keys never go through a password, so they are unaffected.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.auth import client_ip

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"  # the factories' password
START = dt.datetime(2031, 5, 4, 10, 0, tzinfo=dt.UTC)
ROOT = Path(__file__).resolve().parent.parent


def sign_in(client: Client, username: str, password: str, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def signed_in_as(client: Client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value is not None else None


def fail(client: Client, username: str, times: int, **extra) -> list:
    return [sign_in(client, username, "wrong-password", **extra) for _ in range(times)]


@pytest.fixture
def limit(settings) -> int:
    return settings.AXES_FAILURE_LIMIT


def test_after_n_failures_the_right_password_is_refused_until_the_cool_off(client, bob, limit, settings):
    cool_off = settings.AXES_COOLOFF_TIME
    with time_machine.travel(START, tick=False) as clock:
        answers = fail(client, bob.username, limit)
        assert [a.status_code for a in answers[:-1]] == [200] * (limit - 1)  # "wrong password", try again
        assert answers[-1].status_code == 429  # the failure that reaches the limit already says so

        clock.shift(dt.timedelta(minutes=1))
        refused = sign_in(client, bob.username, PASSWORD)
        page = refused.content.decode()
        assert refused.status_code == 429 and signed_in_as(client) is None
        assert 'data-testid="locked-out"' in page and "Too many failed sign-in attempts" in page
        minutes = int(cool_off.total_seconds() // 60)
        assert f"try again in {minutes - 1} minutes" in page
        assert "Please enter a correct" not in page  # never "wrong password" for what may be the right one

        clock.shift(cool_off - dt.timedelta(minutes=1, seconds=1))  # one second before the end
        assert sign_in(client, bob.username, PASSWORD).status_code == 429
        assert signed_in_as(client) is None

        clock.shift(dt.timedelta(seconds=2))  # the cool-off has passed
        assert sign_in(client, bob.username, PASSWORD).status_code == 302
        assert signed_in_as(client) == bob.pk


def test_the_lock_is_per_user_and_address(client, bob, alice, limit):
    other_network = {"REMOTE_ADDR": "192.0.2.44"}
    fail(client, bob.username, limit)
    assert sign_in(client, bob.username, PASSWORD).status_code == 429
    # The same user from elsewhere, and another user from the same address, sign in as usual.
    elsewhere = Client()
    assert sign_in(elsewhere, bob.username, PASSWORD, **other_network).status_code == 302
    neighbour = Client()
    assert sign_in(neighbour, alice.username, PASSWORD).status_code == 302


def test_case_and_spaces_do_not_buy_more_guesses(client, bob, limit):
    variants = [bob.username.upper(), f" {bob.username} ", bob.username.title()]
    for i in range(limit):
        sign_in(client, variants[i % len(variants)], "wrong-password")
    assert sign_in(client, bob.username, PASSWORD).status_code == 429


def test_a_success_clears_the_count(client, bob, limit):
    fail(client, bob.username, limit - 1)
    assert sign_in(client, bob.username, PASSWORD).status_code == 302
    client.logout()
    fail(client, bob.username, limit - 1)
    assert sign_in(client, bob.username, PASSWORD).status_code == 302


def test_api_keys_are_unaffected(client, org, bob, api, limit):
    fail(client, bob.username, limit)
    assert sign_in(client, bob.username, PASSWORD).status_code == 429
    key_client = api(org, "csm", bob)  # same address (the test client's 127.0.0.1), bound to bob
    me = key_client.get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["user"]["email"] == bob.email


def test_an_admin_unlocks_a_member_from_the_members_page(client, org, alice, bob, other_org, charlie, limit):
    locked = Client()
    fail(locked, bob.username, limit)
    assert sign_in(locked, bob.username, PASSWORD).status_code == 429
    seat = bob.memberships.get(organization=org)

    client.force_login(alice)
    page = client.get(reverse("admin-members", args=[org.slug])).content.decode()
    assert f'data-testid="locked-{seat.pk}"' in page and "Sign-in locked" in page
    # Another organization's admin cannot unlock bob: his seat is not theirs to see.
    intruder = Client()
    intruder.force_login(charlie)
    assert intruder.post(reverse("admin-unlock-member", args=[other_org.slug, seat.pk])).status_code == 404
    assert sign_in(locked, bob.username, PASSWORD).status_code == 429

    assert client.post(reverse("admin-unlock-member", args=[org.slug, seat.pk])).status_code == 302
    after = client.get(reverse("admin-members", args=[org.slug])).content.decode()
    assert f'data-testid="locked-{seat.pk}"' not in after
    assert sign_in(locked, bob.username, PASSWORD).status_code == 302


def test_the_operator_unlocks_with_a_command(client, bob, limit):
    fail(client, bob.username, limit)
    assert sign_in(client, bob.username, PASSWORD).status_code == 429
    call_command("axes_reset_username", bob.username)
    assert sign_in(client, bob.username, PASSWORD).status_code == 302


def test_the_django_admin_sign_in_is_throttled_too(client, django_user_model, limit):
    staff = django_user_model.objects.create_user("ops@retain.example", "ops@retain.example", PASSWORD, is_staff=True)
    url = reverse("admin:login")
    for _ in range(limit):
        client.post(url, {"username": staff.username, "password": "wrong-password"})
    refused = client.post(url, {"username": staff.username, "password": PASSWORD})
    assert refused.status_code == 429 and "Too many failed sign-in attempts" in refused.content.decode()
    # …and the lock is the same one as the sign-in page's.
    assert sign_in(Client(), staff.username, PASSWORD).status_code == 429


def test_the_django_admin_is_staff_only(client, alice):
    client.force_login(alice)  # an organization admin is not platform staff
    response = client.get("/django-admin/")
    assert response.status_code == 302 and response["Location"].startswith("/django-admin/login/")


def test_client_address_behind_trusted_proxies(rf, settings):
    request = rf.post("/login/", HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.7", REMOTE_ADDR="10.0.0.2")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.2"  # no proxy trusted: the header proves nothing
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "198.51.100.7"  # the address our proxy saw, not what the client wrote
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(request) == "203.0.113.9"
    settings.TRUSTED_PROXY_COUNT = 3  # fewer entries than proxies: fall back to the socket
    assert client_ip(request) == "10.0.0.2"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(rf.post("/login/", HTTP_X_FORWARDED_FOR="not-an-ip", REMOTE_ADDR="10.0.0.2")) == "10.0.0.2"


# --- /django-admin/ in production ----------------------------------------------------------------

PROBE = """
import json, django
django.setup()
from django.urls import Resolver404, resolve
try:
    resolve("/django-admin/")
    routed = True
except Resolver404:
    routed = False
print(json.dumps({"routed": routed}))
"""
PRODUCTION = {"RETAIN_ENV": "production", "SECRET_KEY": "s" * 50, "ALLOWED_HOSTS": "retain.example.com"}


def admin_routed(tmp_path: Path, **env: str) -> bool:
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_ADMIN_ENABLED"}}
    environ.update(DJANGO_SETTINGS_MODULE="cs_platform.settings", RETAIN_VAR_DIR=str(tmp_path), **env)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])["routed"]


def test_django_admin_is_not_routed_in_production(tmp_path):
    assert admin_routed(tmp_path, **PRODUCTION) is False
    # An operator may turn it on; it is then staff-only and throttled (the tests above).
    assert admin_routed(tmp_path, **PRODUCTION, DJANGO_ADMIN_ENABLED="true") is True
    assert admin_routed(tmp_path) is True  # development
