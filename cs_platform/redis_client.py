"""One Redis client per process for the small shared flags of the apps (debounce markers and the like).

``None`` when no ``REDIS_URL`` is configured (the embedded demo): callers then fall back to their
in-process behaviour. The client is cached and rebuilt when the URL changes (tests point it elsewhere).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


def shared_redis() -> Any | None:
    """The process's Redis client for ``settings.REDIS_URL``, or ``None`` without one."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    import redis  # only where Redis is configured: the demo runs without the server

    client = getattr(shared_redis, "client", None)
    if client is None or getattr(shared_redis, "url", None) != url:
        client = redis.Redis.from_url(url)
        shared_redis.client, shared_redis.url = client, url  # type: ignore[attr-defined]
    return client
