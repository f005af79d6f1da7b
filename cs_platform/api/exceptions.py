"""JSON errors, one shape for every failure: ``{"detail": "...", "errors": {"field": ["message", ...]}}``.

``errors`` is empty unless the input was invalid. Nested input is reported by dotted path, so a bad
product on the second contract line is ``"lines.1.product"``: every message sits next to its field.

Two layers give every path under ``/api/`` that shape: :func:`exception_handler` for what a DRF view
raises, and the project's ``handler400/403/404/500`` (:func:`handler404` …) for what Django answers
before or outside a view: a URL that matches no route (``/api/v1/accounts/0.5/arr/``), a body over
``DATA_UPLOAD_MAX_MEMORY_SIZE``, an unhandled error. Pages keep their HTML error pages.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, OperationalError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from redis import ConnectionError as RedisConnectionError
from redis import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from cs_platform.tenancy import OrgScopeError

logger = logging.getLogger(__name__)

NON_FIELD = "non_field_errors"
#: Paths whose errors are JSON even when no DRF view answers (no route matched, body too large, a crash).
API_PREFIXES = ("/api/", "/hooks/")


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This change conflicts with existing data (for example a duplicate identifier)."
    default_code = "conflict"


class Unavailable(exceptions.APIException):
    """The database or Redis did not answer: retry later (``Retry-After``)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is briefly unavailable; retry later."
    default_code = "unavailable"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        super().__init__(f"The request body is larger than the {limit:,} bytes this API accepts.")


def _too_large_or_suspicious(exc: SuspiciousOperation) -> exceptions.APIException:
    """A body over the size limit is a 413; any other suspicious request (too many fields) a 400."""
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    return exceptions.ParseError(f"The request was refused: {exc}")


def flatten_errors(data: Any, prefix: str = "") -> dict[str, list[str]]:
    """``{"lines": [{}, {"product": ["x"]}]}`` → ``{"lines.1.product": ["x"]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(data, list) and data and all(not isinstance(item, (dict, list)) for item in data):
        out[prefix or NON_FIELD] = [str(item) for item in data]
    elif isinstance(data, list):
        for index, item in enumerate(data):
            if item:  # DRF reports valid list items as empty dicts
                out.update(flatten_errors(item, f"{prefix}.{index}" if prefix else str(index)))
    elif data not in (None, ""):
        out[prefix or NON_FIELD] = [str(data)]
    return out


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, OrgScopeError):
        # A scoping bug must never leak data; answer as if the object did not exist.
        exc = exceptions.NotFound()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()  # never echo the model name or the lookup
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, (ProtectedError, RestrictedError)):
        exc = Conflict("It is still in use (for example by contract lines) and cannot be deleted.")
    elif isinstance(exc, IntegrityError):
        exc = Conflict()
    elif isinstance(exc, SuspiciousOperation):
        exc = _too_large_or_suspicious(exc)
    elif isinstance(exc, (OperationalError, RedisConnectionError, RedisTimeoutError)):
        # The database or Redis is unreachable (restarting, failing over): a JSON 503 the client may retry,
        # not a 500. The error is logged; its message (host names) is not echoed.
        path = getattr(context.get("request"), "path", "?")
        logger.warning("API %s unavailable: %s", path, type(exc).__name__, exc_info=exc)
        exc = Unavailable()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail) or {NON_FIELD: ["Invalid input."]}
        response.data = {"detail": "Invalid input.", "errors": errors}
        response.status_code = status.HTTP_400_BAD_REQUEST
    else:
        detail = response.data.get("detail") if isinstance(response.data, dict) else None
        response.data = {"detail": str(detail or exc), "errors": {}}
    if isinstance(exc, Unavailable):
        response["Retry-After"] = "5"
    return response


# --- Django's own error views, JSON under /api/ -------------------------------------------------


def is_api_path(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


def _json_error(status_code: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "errors": {}}, status=status_code)


def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api_path(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, SuspiciousOperation):
        error = _too_large_or_suspicious(exception)
        return _json_error(error.status_code, str(error.detail))
    return _json_error(status.HTTP_400_BAD_REQUEST, "Bad request.")


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api_path(request):
        return defaults.permission_denied(request, exception)
    return _json_error(status.HTTP_403_FORBIDDEN, str(exceptions.PermissionDenied.default_detail))


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api_path(request):
        return defaults.page_not_found(request, exception)
    # Never echo the path or the resolver's patterns: the same answer as a missing object.
    return _json_error(status.HTTP_404_NOT_FOUND, str(exceptions.NotFound.default_detail))


def handler500(request: HttpRequest) -> HttpResponse:
    if not is_api_path(request):
        return defaults.server_error(request)
    return _json_error(status.HTTP_500_INTERNAL_SERVER_ERROR, "Server error.")
