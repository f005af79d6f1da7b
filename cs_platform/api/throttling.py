"""Per-caller rate limiting that also reports its state in ``RateLimit-*`` response headers."""

from __future__ import annotations

import logging
import math
from typing import Any

import redis
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


class OrgRateThrottle(SimpleRateThrottle):
    """One budget per API key, or per signed-in user; the state is left on the request for headers."""

    scope = "org"

    def get_rate(self) -> str | None:
        # Read the setting on each request (DRF binds it at import), so operators and tests can change it.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if request.auth is not None and hasattr(request.auth, "key_hash"):
            # Part of the digest rather than the row id: ids are reused after a restore, digests are not.
            ident = f"key:{request.auth.key_hash[:24]}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            allowed = super().allow_request(request, view)
        except redis.RedisError as exc:
            # The budgets live in the cache (Redis). While it is unreachable the API serves without them
            # rather than failing every call, as cs_platform.ratelimit.count and the outbound slots do; they
            # apply again as soon as Redis answers. docs/operations.md, "Redis down".
            logger.warning("API rate limit not applied: the cache is unreachable (%s)", type(exc).__name__)
            return True
        if self.key is not None:
            remaining = max(0, self.num_requests - len(self.history))
            reset = self.duration - (self.now - self.history[-1]) if self.history else self.duration
            request._ratelimit = (self.num_requests, remaining, max(0, math.ceil(reset)))
        return allowed


def ratelimit_headers(request: Any) -> dict[str, str]:
    state = getattr(request, "_ratelimit", None)
    if state is None:
        return {}
    limit, remaining, reset = state
    return {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(remaining), "RateLimit-Reset": str(reset)}
