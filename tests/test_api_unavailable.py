"""A backing service down answers the API with a JSON 503 or serves it: never a 500 (issue 16, faults).

Found by the Redis crash test (tests/test_faults_services.py): with Redis unreachable every API call was a 500,
because the rate limit's budget lives in the cache. The budget now fails open (it applies again once Redis
answers), and a database or Redis connection error raised anywhere in an API view is a 503 with
``Retry-After``. Here the cache is a real Redis client pointed at a port nothing listens on.
"""

from __future__ import annotations

from django.db import OperationalError
from rest_framework.test import APIRequestFactory

from cs_platform.api.exceptions import exception_handler
from tests.service_process import free_port


def test_the_api_serves_without_its_rate_limit_while_the_cache_is_unreachable(org, api, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    response = api(org).get("/api/v1/accounts/")
    assert response.status_code == 200, response.content
    assert "RateLimit-Limit" not in response  # no budget was read, none is claimed


def test_a_database_or_redis_connection_error_in_a_view_is_a_json_503_to_retry():
    import redis

    request = APIRequestFactory().get("/api/v1/accounts/")
    for error in (OperationalError("server closed the connection unexpectedly"), redis.ConnectionError("refused")):
        response = exception_handler(error, {"request": request})
        assert response.status_code == 503
        assert response.data == {"detail": "The service is briefly unavailable; retry later.", "errors": {}}
        assert response["Retry-After"] == "5"


def test_a_page_or_the_tracking_api_losing_the_database_answers_503_not_500():
    """The middleware (cs_platform.ops.UnavailableMiddleware): a plain page without the database for pages,
    JSON under /v1/ and /api/; any other error is left to Django (500)."""
    import redis
    from django.test import RequestFactory

    from cs_platform.ops import UnavailableMiddleware

    middleware = UnavailableMiddleware(lambda request: None)
    page = middleware.process_exception(RequestFactory().get("/o/acme/"), OperationalError("gone"))
    assert (page.status_code, page["Retry-After"]) == (503, "5")
    assert page["Content-Type"].startswith("text/html") and b"Briefly unavailable" in page.content
    api = middleware.process_exception(RequestFactory().post("/v1/batch"), redis.TimeoutError("slow"))
    assert (api.status_code, api["Content-Type"]) == (503, "application/json")
    assert middleware.process_exception(RequestFactory().get("/o/acme/"), ValueError("a bug")) is None
