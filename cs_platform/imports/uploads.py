"""Where uploaded import files go: ``MEDIA_ROOT/imports/<org_id>/<uuid>.csv``, readable by the workers;
how big they may be; and their removal once their run has ended.

The web process writes the file, then records and enqueues the import run with its path
(:func:`cs_platform.imports.tasks.start_import`); a worker, possibly on another host sharing the volume,
reads it and deletes it when the run ends (:func:`discard_upload`; the run keeps its error report).
The name is a random UUID: nothing of the user's file name reaches the file system.

**Limits at the door.** :class:`CappedUploadHandler` goes first in the request's upload handlers: a
body whose declared length is over the organization's limit is refused before a byte of it is read,
and a body without a length (chunked) or lying about it is cut off as soon as it passes the limit.
Either way the request ends with :class:`UploadTooLarge` (a ``413``), and nothing reaches the disk
beyond the limit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from rest_framework.exceptions import APIException

from .limits import file_size_text

__all__ = [
    "CappedUploadHandler",
    "UploadTooLarge",
    "discard_upload",
    "store_text",
    "store_upload",
    "uploads_root",
]

#: Room for the multipart envelope (boundaries, headers, the other form fields) around the file.
MULTIPART_SLACK = 64 * 1024


class UploadTooLarge(APIException):
    """The upload is larger than the organization's limit (``413 Content Too Large``)."""

    status_code = 413
    default_code = "upload_too_large"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"The file is larger than {file_size_text(limit)}, this organization's limit per upload. "
            "Split it into smaller files (each is imported all or nothing)."
        )


class CappedUploadHandler(FileUploadHandler):
    """Refuses a request body beyond ``limit`` bytes (``limit`` may be a callable, asked when the body
    is parsed), counting every file part; passes the data on to the next handlers unchanged."""

    def __init__(self, request: Any = None, limit: int | Callable[[], int] = 0) -> None:
        super().__init__(request)
        self._limit = limit
        self.received = 0

    @property
    def limit(self) -> int:
        return self._limit() if callable(self._limit) else self._limit

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: str | None = None
    ) -> None:
        if content_length and content_length > self.limit + MULTIPART_SLACK:
            raise UploadTooLarge(self.limit)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            raise UploadTooLarge(self.limit)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler (memory or temporary file) makes the file


def uploads_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "imports"


def _target(organization: Any) -> Path:
    directory = uploads_root() / str(organization.pk)
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


def discard_upload(path: str | Path) -> bool:
    """Delete a stored upload once its run has ended; returns whether a file was deleted. Only files under
    the uploads folder are ever deleted: a path given to the ``import_csv`` command is the operator's."""
    candidate = Path(path).resolve()
    if not candidate.is_relative_to(uploads_root().resolve()):
        return False
    try:
        candidate.unlink()
    except FileNotFoundError:
        return False
    return True
