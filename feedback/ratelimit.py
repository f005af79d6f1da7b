"""A fixed-window request budget per client address for public pages (the survey response page): a
counter in the cache (Redis in production, shared by every web process)."""

from __future__ import annotations

import math
import time

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

from accounts.auth import client_ip

__all__ = ["parse_rate", "take"]

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(raw: str) -> tuple[int, int]:
    """``"30/min"`` → ``(30, 60)`` (DRF's rate syntax)."""
    try:
        count, period = str(raw).split("/")
        return int(count), PERIODS[period.strip()[0]]
    except (ValueError, KeyError, IndexError):
        raise ImproperlyConfigured(f"a rate must look like 30/min, got {raw!r}") from None


def take(request: HttpRequest, scope: str, rate: str) -> int | None:
    """Count one request of ``scope`` from the request's client; ``None`` when within the budget, else the
    seconds to wait."""
    limit, period = parse_rate(rate)
    now = time.time()
    window = int(now // period)
    key = f"retain:rate:{scope}:{client_ip(request) or 'unknown'}:{window}"
    cache.add(key, 0, timeout=period + 1)
    try:
        used = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=period + 1)
        used = 1
    if used > limit:
        return max(1, math.ceil((window + 1) * period - now))
    return None
