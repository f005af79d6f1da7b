"""The one transport of every connector: the outbound guard, the vendor's rate limit, retries.

:class:`ConnectorHttp` is a urllib3 ``RequestMethods`` (what ``urllib3.PoolManager`` offers), so it is
handed to an official client library built on urllib3 as its pool (``hubspot-api-client``: see
``connectors/hubspot.py``) and a connector without a library calls ``http.request(...)`` /
:meth:`ConnectorHttp.json` itself. Every call:

1. takes a token from the connection's **token bucket** in Redis (the vendor's documented limit,
   ``Connector.rate_limit``; shared by every worker; waits when empty);
2. goes through :class:`cs_platform.outbound.GuardedPool` (address rules, checked address = connected
   address, bounded time and body);
3. on ``429`` waits ``Retry-After`` (seconds or an HTTP date; capped at ``MAX_RETRY_AFTER``) and tries
   again; on ``5xx`` and network errors backs off exponentially with full jitter; at most
   ``MAX_ATTEMPTS`` tries, then the last answer is returned (the library raises its own error for it).

``request_count`` counts the calls actually sent (the run records it).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from urllib3._request_methods import RequestMethods
from urllib3.exceptions import HTTPError

from cs_platform.outbound import GuardedPool

from .connectors.base import ConnectorError, RateLimit

__all__ = ["MAX_ATTEMPTS", "ConnectorHttp", "TokenBucket", "retry_after_seconds"]

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
MAX_RETRY_AFTER = 120.0  # seconds: a longer Retry-After fails the page (the run resumes later)
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0

_BUCKET_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2]) / capacity
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - at) / per_ms)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) * 2 + 1000)
return wait
"""


class TokenBucket:
    """``requests`` per ``per_seconds`` for one key, in Redis (every worker shares it); in the process
    when there is no ``REDIS_URL``. :meth:`take` answers the milliseconds to wait before trying again
    (0: a token was taken)."""

    def __init__(self, key: str, limit: RateLimit) -> None:
        self.key = f"retain:integrations:bucket:{key}"
        self.limit = limit
        self._local_tokens = float(limit.requests)
        self._local_at = time.monotonic()
        self._script: Any = None
        url = getattr(settings, "REDIS_URL", "")
        if url:
            import redis

            self._script = redis.Redis.from_url(url).register_script(_BUCKET_LUA)

    def take(self) -> int:
        if self._script is not None:
            import redis

            try:
                return int(self._script(keys=[self.key], args=[self.limit.requests, self.limit.per_seconds * 1000]))
            except redis.RedisError:
                logger.warning("rate-limit bucket unavailable; using the process's own")
        now = time.monotonic()
        rate = self.limit.requests / self.limit.per_seconds
        self._local_tokens = min(self.limit.requests, self._local_tokens + (now - self._local_at) * rate)
        self._local_at = now
        if self._local_tokens >= 1:
            self._local_tokens -= 1
            return 0
        return int((1 - self._local_tokens) / rate * 1000) + 1


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date; ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class ConnectorHttp(RequestMethods):
    """The guarded, rate-limited, retrying transport of one run (see the module docstring)."""

    def __init__(
        self,
        bucket_key: str,
        limit: RateLimit,
        *,
        sleep: Callable[[float], None] = time.sleep,
        pool: GuardedPool | None = None,
    ) -> None:
        super().__init__(headers=None)
        self.pool = pool or GuardedPool()
        self.bucket = TokenBucket(bucket_key, limit)
        self.sleep = sleep
        self.request_count = 0
        self.retries = 0
        self.waited = 0.0
        # The sync may fetch the next page in a thread while the mapping (owners) calls in the run's:
        # the counters move under a lock (the pool and the bucket are thread-safe themselves).
        self._counting = threading.Lock()

    def _count(self, counter: str, amount: float = 1) -> None:
        with self._counting:
            setattr(self, counter, getattr(self, counter) + amount)

    def _wait(self, seconds: float) -> None:
        self._count("waited", seconds)
        self.sleep(seconds)

    def _take_token(self) -> None:
        while (wait_ms := self.bucket.take()) > 0:
            self._wait(wait_ms / 1000)

    def urlopen(self, method: str, url: str, redirect: bool = False, **kw: Any) -> Any:
        last_error: Exception | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self._take_token()
            self._count("request_count")
            try:
                response = self.pool.urlopen(method, url, **kw)
            except socket.gaierror:
                raise ConnectorError("The API host name could not be resolved; check the base URL.") from None
            except (HTTPError, OSError) as exc:  # network trouble: back off and try again
                last_error = exc
                if attempt == MAX_ATTEMPTS:
                    break
                self._count("retries")
                self._wait(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
                continue
            if response.status == 429 and attempt < MAX_ATTEMPTS:
                delay = retry_after_seconds(response.headers.get("Retry-After"))
                delay = 1.0 if delay is None else delay
                if delay > MAX_RETRY_AFTER:
                    return response
                self._count("retries")
                self._wait(delay)
                continue
            if 500 <= response.status < 600 and attempt < MAX_ATTEMPTS:
                self._count("retries")
                self._wait(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
                continue
            return response
        raise ConnectorError(f"The vendor could not be reached after {MAX_ATTEMPTS} tries.") from last_error

    def json(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> tuple[int, Any]:
        """``(status, parsed JSON or None)`` for connectors calling an API without a client library."""
        send = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            send["Content-Type"] = "application/json"
            response = self.request(method, url, body=json.dumps(body).encode(), headers=send)
        else:
            response = self.request(method, url, fields=fields, headers=send)
        try:
            return response.status, json.loads(response.data or b"null")
        except ValueError:
            return response.status, None

    def close(self) -> None:
        self.pool.clear()
