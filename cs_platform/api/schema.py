"""OpenAPI generation for the org-scoped API: the organization header and the shared error shape."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers


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
    type=str,
    description=(
        "Browser sessions only: the slug of the organization to act in (required when the user belongs to "
        "several). An API key already names its organization."
    ),
)

ERRORS = {
    "400": "Invalid input: `errors` holds the messages per field.",
    "401": "Missing, invalid or revoked API key.",
    "403": "Your role does not allow this change.",
    "404": "No such object in your organization.",
    "429": "Rate limit exhausted; see the `RateLimit-*` and `Retry-After` headers.",
}


class OrgAutoSchema(AutoSchema):
    """Adds the ``X-Organization`` header and the documented error responses to every operation."""

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

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        codes = ["401", "429"]
        if self.method != "GET" or getattr(self.view, "filterset_class", None) is not None:
            codes.append("400")
        if self.method not in ("GET", "HEAD", "OPTIONS"):
            codes.append("403")
        if "{" in self.path:
            codes.append("404")
        for code in sorted(codes):
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = ERRORS[code]
                responses[code] = response
        return responses
