"""Segment-compatible tracking API, mounted at ``/v1/`` (spec §8 "Event ingestion")."""

from django.urls import path, re_path

from . import ingest

app_name = "ingest"

urlpatterns = [
    path("batch", ingest.batch, name="batch"),
    path("track", ingest.track, name="track"),
    path("identify", ingest.identify, name="identify"),
    path("group", ingest.group, name="group"),
    # Anything else under /v1/ answers a JSON 404 too (never the HTML page): clients parse every answer.
    re_path(r"^.*$", ingest.not_found, name="not-found"),
]
