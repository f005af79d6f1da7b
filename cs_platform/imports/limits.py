"""What one uploaded file of an organization may hold (bytes, data rows), and how sizes are shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Max

__all__ = ["ImportLimits", "file_size_text", "import_limits", "organization_model", "upload_ceiling"]


@dataclass(frozen=True)
class ImportLimits:
    """What one uploaded file of an organization may hold: bytes and data rows."""

    max_bytes: int
    max_rows: int


def organization_model() -> Any:
    """The tenancy model (it lives in core: cs_platform.organizations)."""
    from cs_platform.organizations import Organization

    return Organization


def import_limits(organization: Any) -> ImportLimits:
    """The organization's own limits (set by the operator in django-admin), else the server's defaults
    (``IMPORT_MAX_BYTES``, ``IMPORT_MAX_ROWS``)."""
    return ImportLimits(
        max_bytes=organization.import_max_bytes or settings.IMPORT_MAX_BYTES,
        max_rows=organization.import_max_rows or settings.IMPORT_MAX_ROWS,
    )


def upload_ceiling() -> int:
    """The largest upload any organization may send: the server default or a larger organization limit.
    Used before the request's organization is known (a session's CSRF check reads the body)."""
    largest = organization_model().objects.aggregate(largest=Max("import_max_bytes"))["largest"] or 0
    return max(settings.IMPORT_MAX_BYTES, largest)


def file_size_text(size: int) -> str:
    """``52428800`` → ``"50 MB"`` (binary megabytes, as the limits are set)."""
    if size >= 1 << 20:
        return f"{size / (1 << 20):.3g} MB"
    if size >= 1 << 10:
        return f"{size / (1 << 10):.3g} KB"
    return f"{size} bytes"
