"""One fixed-window request budget in the cache (Redis in production, so every web process shares it), used
by the budgets outside DRF's throttles: webhook test sends, the inbound tracker/helpdesk hooks and the public
survey page.

A window opens at the first request counted under its key and lasts one period: a window aligned on the
calendar minute would let a burst straddling its boundary pass twice the limit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

__all__ = ["Verdict", "count", "parse_rate"]

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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
    """Count one request in the window at ``key`` against ``limit`` per ``period`` seconds."""
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
