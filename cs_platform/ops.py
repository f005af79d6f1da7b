"""Endpoints for the people and machines that run Retain (docs/operations.md, "Monitoring").

* ``/healthz`` (liveness): the process answers; touches nothing else, so a database outage never makes an
  orchestrator restart every web process at once.
* ``/readyz`` (readiness): the database answers ``SELECT 1`` and Redis answers ``PING`` (when one is
  configured); ``200`` with each check, or ``503`` naming the one that failed. A load balancer takes a
  process out of rotation while it is not ready.
* ``/metrics``: Prometheus text format: request latency per view (a histogram), queue depth per Celery
  queue (read from the Redis broker), failed job runs (``JobRun``) and the failure counts other apps
  register (webhook deliveries, by ``playbooks``). It needs ``Authorization: Bearer <METRICS_TOKEN>``; with
  no ``METRICS_TOKEN`` it is served only outside production (the demo), and is a ``404`` in production.

The three are answered by :class:`OpsEndpointsMiddleware`, first in ``MIDDLEWARE``: before the host check
(a load balancer probes with the container's address as ``Host``), the HTTPS redirect (probes speak plain
HTTP inside the network), sessions and sign-in. They carry no tenant data.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from .choices import JobStatus

logger = logging.getLogger(__name__)

__all__ = [
    "OpsEndpointsMiddleware",
    "RequestMetricsMiddleware",
    "queue_depths",
    "readiness",
    "register_failure_source",
]

#: Request durations per view, in seconds. ``view`` is the URL pattern's name (``account-list``,
#: ``portfolio``…), never the path, so ids and tokens make no new series.
REQUEST_LATENCY = Histogram(
    "retain_http_request_duration_seconds",
    "Time from the request reaching Django to the response leaving it, per view.",
    ["view", "method", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

#: name -> callable returning ``{label value: failures}``; see :func:`register_failure_source`.
_FAILURE_SOURCES: dict[str, Callable[[], dict[str, int]]] = {}

#: Priority sub-queues kombu's Redis transport keeps beside a queue's own list (priority steps 0, 3, 6, 9).
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def register_failure_source(name: str, source: Callable[[], dict[str, int]]) -> None:
    """Publish ``retain_<name>_failures_total`` on ``/metrics``: ``source()`` returns failures per kind.

    The seam through which a higher app (``playbooks``: webhook deliveries) reports its failures without the
    kernel importing it. Called from the app's ``ready()``; registering a name twice keeps the last.
    """
    _FAILURE_SOURCES[name] = source


# --- Readiness -----------------------------------------------------------------------------------------


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_redis() -> str:
    url = settings.REDIS_URL
    if not url:
        return "not configured"  # the demo: cache in memory, queue on the filesystem
    import redis  # only where Redis is configured

    timeout = settings.READINESS_TIMEOUT_SECONDS
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def readiness() -> tuple[bool, dict[str, str]]:
    """Whether this process can serve: ``(ready, {check: "ok" | "not configured" | the reason it failed})``.

    A failure is reported by its exception's class name only: the message of a driver error can carry a
    host name or a user name, and ``/readyz`` is reachable without credentials.
    """
    checks: dict[str, str] = {}
    ready = True
    for name, check in (("database", _check_database), ("redis", _check_redis)):
        try:
            checks[name] = check()
        except Exception as exc:  # any failure means "not ready"; which one is told by its class
            checks[name] = f"failed: {type(exc).__name__}"
            ready = False
    return ready, checks


# --- Metrics -------------------------------------------------------------------------------------------


def queue_depths() -> dict[str, int]:
    """Messages waiting per Celery queue (``celery``, ``outbound``) on the Redis broker; empty without one.

    Tasks a worker has already taken (prefetched, or scheduled with a countdown) are not waiting and are
    not counted: ``celery inspect scheduled`` lists those.
    """
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith(("redis://", "rediss://")):
        return {}
    import redis

    client = redis.Redis.from_url(broker, socket_connect_timeout=2, socket_timeout=2)
    try:
        queues = dict.fromkeys([settings.CELERY_TASK_DEFAULT_QUEUE, settings.OUTBOUND_QUEUE], 0)
        with client.pipeline(transaction=False) as pipe:
            for queue in queues:
                for suffix in _PRIORITY_SUFFIXES:
                    pipe.llen(queue + suffix)
            lengths = iter(pipe.execute())
        for queue in queues:
            queues[queue] = sum(next(lengths) for _ in _PRIORITY_SUFFIXES)
        return queues
    finally:
        client.close()


class _ScrapeTimeCollector:
    """What is read when Prometheus scrapes: queue depths, failed job runs, registered failure sources."""

    def collect(self) -> Iterable[Any]:
        depth = GaugeMetricFamily(
            "retain_celery_queue_length", "Messages waiting in each Celery queue (Redis broker).", labels=["queue"]
        )
        up = GaugeMetricFamily("retain_celery_broker_up", "1 when the broker answered the queue-length read.")
        try:
            for queue, length in queue_depths().items():
                depth.add_metric([queue], length)
            up.add_metric([], 1)
        except Exception:  # the broker is down: say so instead of failing the whole scrape
            up.add_metric([], 0)
        yield depth
        yield up

        # Imported here: the model module needs the app registry, this module is imported by settings' users.
        from .organizations import JobRun

        jobs = CounterMetricFamily(
            "retain_job_failures", "Background job runs that ended failed (JobRun rows), by kind.", labels=["kind"]
        )
        failed = JobRun.all_orgs.filter(status=JobStatus.FAILED).values("kind").annotate(n=Count("id")).order_by("kind")
        for row in failed:
            # Import runs are recorded as "import:<kind>" and backtests per scorecard: keep the family only.
            jobs.add_metric([row["kind"].split(":")[0]], row["n"])
        yield _merge(jobs)

        for name, source in sorted(_FAILURE_SOURCES.items()):
            family = CounterMetricFamily(
                f"retain_{name}_failures", f"Failures of {name.replace('_', ' ')}, by kind.", labels=["kind"]
            )
            for kind, value in sorted(source().items()):
                family.add_metric([kind], value)
            yield family


def _merge(family: CounterMetricFamily) -> CounterMetricFamily:
    """One sample per label set: kinds that collapse to the same family (``import:accounts``,
    ``import:contacts``) are summed."""
    totals: dict[tuple[tuple[str, str], ...], float] = {}
    for sample in family.samples:
        if sample.name.endswith("_total"):
            key = tuple(sorted(sample.labels.items()))
            totals[key] = totals.get(key, 0) + sample.value
    merged = CounterMetricFamily(family.name, family.documentation, labels=["kind"])
    for key, value in sorted(totals.items()):
        merged.add_metric([dict(key)["kind"]], value)
    return merged


def metrics_text() -> bytes:
    """The Prometheus exposition of this process (or, under gunicorn with ``PROMETHEUS_MULTIPROC_DIR``, of
    every worker process), plus what is read at scrape time."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(REQUEST_LATENCY)
    registry.register(_ScrapeTimeCollector())
    return generate_latest(registry)


def _metrics_allowed(request: HttpRequest) -> bool | None:
    """``True``: serve; ``False``: 401 (a token is required and was wrong); ``None``: 404 (switched off)."""
    token = settings.METRICS_TOKEN
    if not token:
        return None if settings.PRODUCTION else True
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


# --- Middleware ----------------------------------------------------------------------------------------


class OpsEndpointsMiddleware:
    """Answers ``/healthz``, ``/readyz`` and ``/metrics`` before any other middleware (see the module doc)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path not in ("/healthz", "/readyz", "/metrics"):
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response: HttpResponse = JsonResponse({"detail": "Method not allowed."}, status=405)
            response["Allow"] = "GET, HEAD"
        elif path == "/healthz":
            response = JsonResponse({"status": "ok"})
        elif path == "/readyz":
            ready, checks = readiness()
            body = {"status": "ok" if ready else "unavailable", "checks": checks}
            response = JsonResponse(body, status=200 if ready else 503)
        else:
            allowed = _metrics_allowed(request)
            if allowed is None:
                response = JsonResponse({"detail": "Not found."}, status=404)
            elif not allowed:
                response = JsonResponse({"detail": "A valid metrics token is required."}, status=401)
                response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            else:
                response = HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
        response["Cache-Control"] = "no-store"
        return response


class RequestMetricsMiddleware:
    """Times every request into :data:`REQUEST_LATENCY`, labelled by the view's URL name."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        # Unresolved paths (404s, static files) share one label: scanners must not mint new series.
        view = (match.view_name or match.route) if match is not None else "<unresolved>"
        method = request.method if request.method in _METHODS else "other"
        REQUEST_LATENCY.labels(view, method, response.status_code).observe(time.perf_counter() - started)
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class UnavailableMiddleware:
    """A view that loses the database or Redis (a restart, a failover) answers ``503`` with ``Retry-After``,
    not ``500``: JSON under ``/api/`` and ``/v1/``, a plain page elsewhere, rendered without the database (no
    context processor, no session). Nothing else changes: the next request reconnects by itself
    (``CONN_HEALTH_CHECKS``; redis-py reconnects on its own)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        import redis
        from django.db import OperationalError
        from django.template.loader import render_to_string

        if not isinstance(exception, (OperationalError, redis.ConnectionError, redis.TimeoutError)):
            return None
        logger.warning("%s unavailable: %s", request.path, type(exception).__name__, exc_info=exception)
        detail = "The service is briefly unavailable; retry later."
        if request.path.startswith(("/api/", "/v1/")):
            response: HttpResponse = JsonResponse({"detail": detail, "errors": {}}, status=503)
        else:
            response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = "5"
        return response
