"""OpenAPI generation for the org-scoped API: the organization header and the shared error shape."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers, viewsets

from .organization import SLUG_MAX_LENGTH, SLUG_PATTERN
from .serializers import KnownFieldsMixin


class ErrorSerializer(serializers.Serializer):
    """Every error response: a message, and for invalid input the messages of each field."""

    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text='Messages per field; nested fields by dotted path such as "lines.1.product". Empty unless 400.',
    )


ORGANIZATION_HEADER = OpenApiParameter(
    name="X-Organization",
    location=OpenApiParameter.HEADER,
    required=False,
    type={"type": "string", "pattern": SLUG_PATTERN, "maxLength": SLUG_MAX_LENGTH},
    description=(
        "The slug of the organization to act in. Browser sessions need it when the user belongs to several "
        "organizations (or `?org=<slug>`). An API key already names its organization: leave it out, or name "
        "the key's own organization; any other slug is a `404`, exactly like a slug a session is not a member "
        "of. A value that is not a slug is a `400`."
    ),
)

ERRORS = {
    "400": (
        "Invalid input: `errors` holds the messages per field (query parameters and body alike). Also an "
        "`X-Organization` that is not a slug, or a session in several organizations that names none."
    ),
    "401": "Missing, invalid or revoked API key (or no session).",
    "403": (
        "Your role does not allow this (writes; admin-only resources), or the signed-in user belongs to no "
        "organization."
    ),
    "404": "`X-Organization` names an organization you cannot act in (for an API key: any but its own).",
    "409": (
        "The change conflicts with existing data (for example a duplicate identifier), or deletes a row that is "
        "still in use."
    ),
    "413": "The request body is larger than the API accepts.",
    "415": "The body's `Content-Type` is not one this operation accepts.",
    "429": "Rate limit exhausted; see the `RateLimit-*` and `Retry-After` headers.",
    "503": "The database or Redis is briefly unreachable (a restart, a failover): retry after `Retry-After` seconds.",
}
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
#: The one answer that is not the API's: gunicorn refuses a request line over 4,094 bytes before Django runs.
URI_TOO_LONG = {
    "description": (
        "The URL is longer than the HTTP server accepts (gunicorn: a 4,094-byte request line). The server "
        "answers before the API runs, so the body is its own HTML page, not the JSON error."
    ),
    "content": {"text/html": {"schema": {"type": "string"}}},
}


def _form_field_schema(field: forms.Field) -> dict[str, Any]:
    """What the filter's form field accepts, in JSON Schema: the type it parses to, its bounds and its
    pattern. The filter validates with exactly this field, so the document cannot drift from it."""
    schema: dict[str, Any]
    if isinstance(field, forms.NullBooleanField):
        schema = {"type": "boolean"}
    elif isinstance(field, forms.IntegerField) and not isinstance(field, (forms.DecimalField, forms.FloatField)):
        schema = {"type": "integer"}
    elif isinstance(field, (forms.DecimalField, forms.FloatField)):
        schema = {"type": "number"}
    elif isinstance(field, forms.DateTimeField):
        schema = {"type": "string", "format": "date-time"}
    elif isinstance(field, forms.DateField):
        schema = {"type": "string", "format": "date"}
    elif type(field) is forms.CharField:
        schema = {"type": "string"}
        patterns = [v.regex.pattern for v in field.validators if isinstance(v, RegexValidator) and not v.inverse_match]
        if patterns:
            schema["pattern"] = patterns[0]
        if field.max_length is not None:
            schema["maxLength"] = field.max_length
    else:
        return {}
    if schema["type"] in ("integer", "number"):
        # Bounds are validators (``min_value`` adds one, django-filter's NumberFilter adds ``≤ 1e50``): the tightest.
        lows = [v.limit_value for v in field.validators if isinstance(v, MinValueValidator)]
        highs = [v.limit_value for v in field.validators if isinstance(v, MaxValueValidator)]
        cast = int if schema["type"] == "integer" else float
        if lows:
            schema["minimum"] = cast(max(lows))
        if highs:
            schema["maximum"] = cast(min(highs))
    return schema


class OrgFilterExtension(DjangoFilterExtension):
    """django-filter parameters typed from the form field that validates them (drf-spectacular guesses
    from the model field, and calls an id ``number``, a method filter ``string``)."""

    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):  # type: ignore[no-untyped-def]
        parameters = super().resolve_filter_field(auto_schema, model, filterset_class, field_name, filter_field)
        typed = _form_field_schema(filter_field.field)
        for parameter in parameters:
            if parameter["schema"].get("type") == "array":
                continue  # repeated parameters; each value is checked against its choices
            if typed:
                enum = parameter["schema"].get("enum")
                parameter["schema"] = {**typed, **({"enum": enum} if enum else {})}
        return parameters


class OrgAutoSchema(AutoSchema):
    """Adds the ``X-Organization`` header and every error response an operation can give.

    Every operation resolves the organization first, so each can answer 400 (a malformed header), 401,
    403, 404 (an organization the caller cannot act in) and 429; the rest depends on the operation.
    Request bodies of serializers that refuse unknown fields (``KnownFieldsMixin``, every tenant serializer)
    declare ``additionalProperties: false``: the document must not promise that extra fields pass.
    """

    def get_tags(self) -> list[str]:
        # One tag per resource ("accounts", "contracts", ...) rather than the version prefix.
        parts = [part for part in self.path.split("/") if part and not part.startswith("{")]
        if len(parts) >= 3 and parts[0] == "api":
            return [parts[2]]
        return super().get_tags()

    def get_response_serializers(self) -> Any:
        if getattr(self.view, "action", None) == "upsert":  # the base action serves every resource's serializer
            serializer = self._get_serializer()
            return {201: serializer, 200: serializer}
        return super().get_response_serializers()

    def get_override_parameters(self) -> list[Any]:
        return [*super().get_override_parameters(), ORGANIZATION_HEADER]

    def _get_format_parameters(self) -> list[dict[str, Any]]:
        parameters = super()._get_format_parameters()
        for parameter in parameters:
            parameter["description"] = "`csv` for a CSV file (a list: every row, not one page); JSON otherwise."
        return parameters

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters = super()._get_parameters()
        for parameter in parameters:
            # An optional query parameter sent empty (``?renewal_after=``, ``?format=``, ``?page=``) is read as
            # not sent, as django-filter, DRF and the pages' filter forms all do; a repeated one (an exploded
            # array) has no empty form, a comma-separated one (``ordering``, not exploded) has.
            repeated = parameter.get("schema", {}).get("type") == "array" and parameter.get("explode", True)
            if parameter.get("in") == "query" and not parameter.get("required") and not repeated:
                parameter["allowEmptyValue"] = True
        return parameters

    def _map_serializer(self, serializer: Any, direction: str, bypass_extensions: bool = False) -> dict[str, Any]:
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(force_instance(serializer), KnownFieldsMixin):
            schema["additionalProperties"] = False
        return schema

    def _error_descriptions(self) -> dict[str, str]:
        codes = {code: ERRORS[code] for code in ("400", "401", "403", "404", "429", "503")}
        if "{" in self.path:
            codes["404"] = f"No such object in your organization; or {ERRORS['404'][0].lower()}{ERRORS['404'][1:]}"
        if self._is_list_view() and self._get_paginator() is not None:
            codes["404"] += " Also a `page` past the last page."
        if self.method in WRITE_METHODS and isinstance(self.view, viewsets.GenericViewSet):
            codes["409"] = ERRORS["409"]
        if self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None:
            codes["413"] = ERRORS["413"]
            codes["415"] = ERRORS["415"]
        return codes

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code, description in sorted(self._error_descriptions().items()):
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, media_types=["application/json"])
                response["description"] = description  # errors are JSON, ``?format=csv`` or not
                responses[code] = response
        for code, response in responses.items():
            content = response.get("content") if code >= "400" else None
            if content and "application/json" in content:
                # An error a view declares itself (e.g. a 503) is JSON too, whatever renderers the view has.
                response["content"] = {"application/json": content["application/json"]}
        responses["414"] = URI_TOO_LONG
        return dict(sorted(responses.items()))

    def _get_paginator(self) -> Any:
        # Only a list paginates (and an action that says so): ``…/history/`` answers a plain array.
        if getattr(self.view, "action", None) not in ("list", *getattr(self.view, "paginated_actions", ())):
            return None
        return super()._get_paginator()

    def get_filter_backends(self) -> list[Any]:
        # Only a list runs the filterset and ``ordering``; an action documents its own parameters.
        if getattr(self.view, "action", None) != "list":
            return []
        return super().get_filter_backends()
