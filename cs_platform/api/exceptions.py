"""JSON errors, one shape for every failure: ``{"detail": "...", "errors": {"field": ["message", ...]}}``.

``errors`` is empty unless the input was invalid. Nested input is reported by dotted path, so a bad
product on the second contract line is ``"lines.1.product"``: every message sits next to its field.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from cs_platform.tenancy import OrgScopeError

NON_FIELD = "non_field_errors"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This change conflicts with existing data (for example a duplicate identifier)."
    default_code = "conflict"


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
    return response
