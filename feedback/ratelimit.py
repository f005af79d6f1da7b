"""The public survey page's request budget per client address (cs_platform.ratelimit's shared counter)."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.auth import client_ip
from cs_platform.ratelimit import count, parse_rate

__all__ = ["take"]


def take(request: HttpRequest, scope: str, rate: str) -> int | None:
    """Count one request of ``scope`` from the request's client; ``None`` when within the budget, else the
    seconds to wait."""
    limit, period = parse_rate(rate, name=f"the {scope} rate")
    return count(f"retain:rate:{scope}:{client_ip(request) or 'unknown'}", limit, period).wait
