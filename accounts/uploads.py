"""Where uploaded import files go: ``MEDIA_ROOT/imports/<org_id>/<uuid>.csv``, readable by the workers.

The web process writes the file, then records and enqueues the import run with its path
(:func:`accounts.imports.start_import`); a worker, possibly on another host sharing the volume,
reads it. The name is a random UUID: nothing of the user's file name reaches the file system.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.conf import settings

__all__ = ["store_upload", "store_text"]


def _target(organization: Any) -> Path:
    directory = Path(settings.MEDIA_ROOT) / "imports" / str(organization.pk)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{uuid.uuid4()}.csv"


def store_upload(organization: Any, upload: Any) -> Path:
    """Copy an uploaded file (Django ``UploadedFile``) to the organization's import folder, in chunks."""
    path = _target(organization)
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return path


def store_text(organization: Any, text: str) -> Path:
    """Store CSV text sent inline (the API's JSON ``content``) like an uploaded file."""
    path = _target(organization)
    path.write_text(text, encoding="utf-8")
    return path
