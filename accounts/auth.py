"""Sign-in throttling glue for django-axes: one user name per person, the lockout page, unlocking.

django-axes (configured in ``settings.py``, "Login throttling") counts failed sign-ins per user name
and client address and refuses the pair once it reaches ``AXES_FAILURE_LIMIT``, until
``AXES_COOLOFF_TIME`` has passed since the last failure. This module supplies what is Retain's own:
how a typed user name is normalised, the page a locked-out person sees, and the unlock used by the
Members admin page.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from cs_platform.ratelimit import client_address

__all__ = ["client_ip", "locked_out", "locked_usernames", "lockout_message", "login_username", "unlock_login"]

LOCKOUT_STATUS = 429


def login_username(request: HttpRequest | None, credentials: dict[str, Any] | None) -> str | None:
    """The user name a sign-in attempt is counted under: trimmed and lower-cased.

    User names are emails (lower case); "Bob@X.com " must count against the same budget as
    "bob@x.com", or varying the case would multiply an attacker's guesses.
    """
    raw = (credentials or {}).get("username")
    if raw is None and request is not None:
        raw = getattr(request, "data", request.POST).get("username")
    return raw.strip().lower() if isinstance(raw, str) else raw


def client_ip(request: HttpRequest) -> str | None:
    """``AXES_CLIENT_IP_CALLABLE``: the address failures are counted under.

    With ``TRUSTED_PROXY_COUNT = n`` proxies in front, each appending the address it received from
    to ``X-Forwarded-For``, the client is the n-th entry from the right (entries further left were
    sent by the client and prove nothing). Without proxies, or when the header is short or not an
    address, the socket's ``REMOTE_ADDR``.
    """
    return client_address(request)  # one rule for every per-address budget (cs_platform.ratelimit)


def _minutes_left(username: str | None, ip_address: str | None, cool_off: timedelta) -> int:
    """Whole minutes until the pair's lock lifts (the cool-off runs from its last counted failure)."""
    last = AccessAttempt.objects.filter(username=username, ip_address=ip_address).aggregate(t=Max("attempt_time"))["t"]
    if last is None:
        return math.ceil(cool_off.total_seconds() / 60)
    remaining = (last + cool_off - timezone.now()).total_seconds()
    return max(1, math.ceil(remaining / 60))


def lockout_message(minutes: int) -> str:
    """What a locked-out person reads on the sign-in page."""
    unit = "minute" if minutes == 1 else "minutes"
    return (
        f"Too many failed sign-in attempts for this account from your network. Sign-in is locked: "
        f"try again in {minutes} {unit}, or ask an admin of your organization to unlock it."
    )


def locked_out(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: the sign-in page again, with why and for how long, as ``429``.

    Whatever answer the view had prepared (a form error that would read "wrong password") is
    replaced, so a locked-out person is never told to re-check a password that may well be right.
    """
    username = login_username(request, credentials)
    cool_off = get_cool_off(request) or timedelta(0)
    minutes = _minutes_left(username, client_ip(request), cool_off)
    form = AuthenticationForm(request, initial={"username": username or ""})
    context = {"form": form, "locked_out": lockout_message(minutes), "next": request.POST.get("next", "")}
    return render(request, "registration/login.html", context, status=LOCKOUT_STATUS)


def locked_usernames(usernames: Iterable[str]) -> set[str]:
    """Which of ``usernames`` are locked out now, from at least one address. One query."""
    names = [name.lower() for name in usernames]
    if not names:
        return set()
    cool_off = get_cool_off() or timedelta(0)
    rows = (
        AccessAttempt.objects.filter(username__in=names, attempt_time__gte=timezone.now() - cool_off)
        .values("username", "ip_address")
        .annotate(failures=Sum("failures_since_start"))
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
    )
    return {row["username"] for row in rows}


def unlock_login(username: str) -> int:
    """Forget every counted failure of ``username`` (all addresses); returns how many records went."""
    return reset(username=username.strip().lower())
