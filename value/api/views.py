"""``/api/v1/business-reviews/``: QBRs and EBRs with their value report (JSON and PDF)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from cs_platform.api.viewsets import OrgScopedViewSet, refuse_after_lookup, refused

from ..models import BusinessReview
from ..pdf import report_pdf, review_filename
from ..report import review_report
from ..review_filtersets import BusinessReviewFilterSet
from ..reviews import NextObjective, ReviewPermissionDenied, close_review, start_review
from . import serializers as s


class PDFRenderer(BaseRenderer):
    """Declares ``application/pdf`` for content negotiation; the PDF action answers its bytes itself."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return data if isinstance(data, bytes) else b""


def pdf_response(report: dict[str, Any], organization_name: str) -> HttpResponse:
    """The report's PDF as an attachment (shared by the API and the page)."""
    response = HttpResponse(report_pdf(report, organization_name=organization_name), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{review_filename(report)}"'
    return response


class BusinessReviewViewSet(OrgScopedViewSet):
    """``/api/v1/business-reviews/``: list, start (``POST``) and read reviews; ``POST …/close/`` closes one;
    ``GET …/report/`` is its value report as JSON and ``GET …/pdf/`` as a PDF (frozen once closed).
    Writes follow the account (its CSM, their team lead, an admin); viewers read. ``PUT``, ``PATCH`` and
    ``DELETE`` are ``405`` (``404`` for an id outside the organization)."""

    queryset = BusinessReview.all_orgs.select_related("account", "created_by", "closed_by")
    serializer_class = s.BusinessReviewSerializer
    filterset_class = BusinessReviewFilterSet
    ordering_fields: ClassVar[list[str]] = ["period_end", "period_start", "held_on", "created_at", "closed_at"]
    ordering: ClassVar[list[str]] = ["-period_end"]

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ReviewPermissionDenied as exc:
            self.permission_denied(self.request, message=str(exc.args[0]) if exc.args else None)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}) from exc

    def perform_create(self, serializer: Any) -> None:
        data = dict(serializer.validated_data)
        account = data.pop("account")
        review = self._call(start_review, self.actor.organization, account, by=self.actor, **data)
        serializer.instance = self.get_queryset().get(pk=review.pk)

    @refused
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return refuse_after_lookup(self, request, "A review is closed with POST …/close/; it is not edited.")

    @refused
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return refuse_after_lookup(self, request, "A review is closed with POST …/close/; it is not edited.")

    @refused
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return refuse_after_lookup(self, request, "Business reviews are history: they cannot be deleted.")

    @extend_schema(
        summary="Close a business review",
        description=(
            "Records the review as an activity of its kind (`qbr`/`ebr`) on the account with the summary, "
            "creates `next_objectives` on the success plan, sets the plan's last and next review dates, and "
            "freezes the value report: the review's report and PDF no longer change. `400` if it is closed."
        ),
        request=s.CloseReviewSerializer,
        responses={200: s.BusinessReviewSerializer},
    )
    @action(detail=True, methods=["post"], url_path="close")
    def close(self, request: Request, pk: str | None = None) -> Response:
        review = self.get_object()
        form = s.CloseReviewSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        data = form.validated_data
        self._call(
            close_review,
            self.actor.organization,
            review,
            by=self.actor,
            held_on=data["held_on"],
            summary=data["summary"],
            next_review_on=data.get("next_review_on"),
            next_objectives=[NextObjective(**dict(o)) for o in data.get("next_objectives", [])],
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=review.pk)).data)

    @extend_schema(summary="The review's value report", responses=s.ReportSerializer)
    @action(detail=True, methods=["get"], url_path="report")
    def report(self, request: Request, pk: str | None = None) -> Response:
        review = self.get_object()
        return Response(review_report(self.actor.organization, review))

    @extend_schema(
        summary="The review's value report as a PDF",
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF file")},
    )
    @action(detail=True, methods=["get"], url_path="pdf", renderer_classes=[JSONRenderer, PDFRenderer])
    def pdf(self, request: Request, pk: str | None = None) -> HttpResponse:
        review = self.get_object()
        return pdf_response(review_report(self.actor.organization, review), self.actor.organization.name)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # An error of the PDF action (a 404, a 403) is the JSON error body of every endpoint, whatever Accept said.
        if isinstance(response, Response) and response.status_code >= 400:
            if getattr(getattr(request, "accepted_renderer", None), "format", None) == PDFRenderer.format:
                request.accepted_renderer = JSONRenderer()
                request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
