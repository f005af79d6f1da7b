"""One fixed-window request budget in the cache (Redis in production, so every web process shares it), used
by the budgets outside DRF's throttles: webhook test sends, the inbound tracker/helpdesk hooks, the public
survey page, and the public pages of :class:`PublicPagesRateLimitMiddleware` (unsubscribe links, invitation
links, sign-in).

A window opens at the first request counted under its key and lasts one period: a window aligned on the
calendar minute would let a burst straddling its boundary pass twice the limit.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from redis import RedisError

__all__ = ["PublicPagesRateLimitMiddleware", "Verdict", "client_address", "count", "parse_rate"]

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
logger = logging.getLogger(__name__)


def parse_rate(raw: str, *, name: str = "a rate") -> tuple[int, int]:
    """``"30/min"`` → ``(30, 60)`` (DRF's rate syntax); ``name`` (the setting) names a malformed value."""
    try:
        number, period = str(raw).split("/")
        return int(number), PERIODS[period.strip()[0]]
    except (ValueError, KeyError, IndexError):
        raise ImproperlyConfigured(f"{name} must look like 5/min, got {raw!r}") from None


@dataclass(frozen=True)
class Verdict:
    """What counting one request said: ``wait`` seconds before the next is allowed (``None``: allowed now),
    and whether this was the window's first refusal (callers log only that one)."""

    wait: int | None
    first_refusal: bool = False


def count(key: str, limit: int, period: int) -> Verdict:
    """Count one request in the window at ``key`` against ``limit`` per ``period`` seconds.

    While the cache (Redis) is unreachable every budget fails open: the request is allowed and a warning
    logged, rather than every sign-in, public page and hook failing with it; the budgets apply again as soon
    as Redis answers (the API's throttles do the same: cs_platform.api.throttling)."""
    try:
        return _count(key, limit, period)
    except RedisError as exc:
        logger.warning("rate limit %s not applied: the cache is unreachable (%s)", key, type(exc).__name__)
        return Verdict(None)


def _count(key: str, limit: int, period: int) -> Verdict:
    now = time.time()
    if cache.add(key, 0, timeout=period):
        cache.set(f"{key}:opened", now, timeout=period)
    try:
        used = cache.incr(key)
    except ValueError:  # the window expired between add and incr: this request opens the next one
        cache.set(key, 1, timeout=period)
        cache.set(f"{key}:opened", now, timeout=period)
        used = 1
    if used <= limit:
        return Verdict(None)
    opened = cache.get(f"{key}:opened", now)
    return Verdict(max(1, math.ceil(opened + period - now)), used == limit + 1)


def client_address(request: HttpRequest) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or behind ``TRUSTED_PROXY_COUNT`` reverse proxies that each append
    the address they received from to ``X-Forwarded-For``, the entry that many places from the right (entries
    further left were written by the client and prove nothing). Sign-in throttling counts under it too."""
    remote = request.META.get("REMOTE_ADDR")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops:
        entries = [e.strip() for e in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if e.strip()]
        if len(entries) >= hops:
            try:
                return str(ipaddress.ip_address(entries[-hops]))
            except ValueError:
                return remote
    return remote


@dataclass(frozen=True)
class PublicRule:
    """A public page's budget per client address: ``scope`` names the counter, ``setting`` the rate."""

    scope: str
    setting: str
    applies: Callable[[HttpRequest], bool]


#: Public pages without a budget of their own. The survey page (/s/) counts in its view (feedback) and the
#: inbound hooks (/hooks/) per organization and source (health.inbound); /v1/ ingestion needs a write key.
PUBLIC_RULES = (
    # The one-click unsubscribe link of templated email: the signed token is the credential.
    PublicRule("unsubscribe", "UNSUBSCRIBE_PAGE_RATE", lambda r: r.path_info.startswith("/u/")),
    # An invitation link: the single-use token is the credential.
    PublicRule("invitation", "INVITATION_PAGE_RATE", lambda r: r.path_info.startswith("/invitations/")),
    # Password sign-in, per address across every user name (django-axes counts each user name and address
    # pair): one address spraying passwords over many accounts is held here.
    PublicRule(
        "login",
        "LOGIN_RATE",
        lambda r: r.method == "POST" and r.path_info in ("/login/", "/django-admin/login/"),
    ),
)


class PublicPagesRateLimitMiddleware:
    """Answers ``429`` with ``Retry-After`` (a page saying how long to wait) once a client address passes a
    public page's budget (:data:`PUBLIC_RULES`); other requests pass untouched, without a cache call."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for rule in PUBLIC_RULES:
            if rule.applies(request):
                limit, period = parse_rate(getattr(settings, rule.setting), name=rule.setting)
                address = client_address(request) or "unknown"
                wait = count(f"retain:rate:{rule.scope}:{address}", limit, period).wait
                if wait is not None:
                    response = render(request, "429.html", {"wait": wait}, status=429)
                    response["Retry-After"] = str(wait)
                    return response
                break
        return self.get_response(request)
