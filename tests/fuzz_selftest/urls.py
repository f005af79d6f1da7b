"""Every URL of the project plus ``/api/v1/selftest/broken/``, whose answer violates its own schema."""

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from cs_platform.api.viewsets import OrgAPIView
from cs_platform.urls import handler400, handler403, handler404, handler500  # noqa: F401
from cs_platform.urls import urlpatterns as project_urlpatterns


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Documented as an integer")


class BrokenView(OrgAPIView):
    """Says it answers ``{"count": <integer>}`` and answers a string: the fuzz run must report it."""

    @extend_schema(summary="Deliberately broken", responses=CountSerializer)
    def get(self, request: Request) -> Response:
        return Response({"count": "not a number"})


urlpatterns = [path("api/v1/selftest/broken/", BrokenView.as_view()), *project_urlpatterns]
