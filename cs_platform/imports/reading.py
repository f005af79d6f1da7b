"""Reading a CSV file for an import: streamed, rewindable, with bounded memory per row.

The file is never read whole: :func:`records` reads it line by line, and a row (all its lines) longer
than :data:`MAX_RECORD_CHARS` characters stops the reading with :class:`Unreadable`, as do bytes that are
not UTF-8 and broken CSV, each naming the line where reading stopped. Cells go through
:func:`cs_platform.exports.restore`, so the formula neutralising of our exports round-trips.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from cs_platform.exports import restore

from .base import ErrorList, ImportRefused

__all__ = [
    "MAX_RECORD_CHARS",
    "Unreadable",
    "check_csv_type",
    "count_rows",
    "data_rows",
    "open_source",
    "records",
]

MAX_RECORD_CHARS = 1_000_000  # one row, all its cells and lines: bounds the memory a row can take


@contextmanager
def open_source(source: str | Path | IO[Any]) -> Iterator[IO[str]]:
    """A rewindable text stream over ``source`` (path, text or binary stream); BOM-tolerant."""
    if isinstance(source, str | Path):
        with open(source, newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
            yield handle
        return
    stream: IO[Any] = source
    if not (hasattr(stream, "seekable") and stream.seekable()):
        # Uploads and pipes cannot be read twice: spool them (to disk beyond 16 MB) first.
        spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115
        for chunk in iter(lambda: stream.read(1 << 16), b"" if _is_binary(stream) else ""):
            spool.write(chunk.encode() if isinstance(chunk, str) else chunk)
        spool.seek(0)
        stream = spool
    if _is_binary(stream):
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="", errors="surrogateescape")
        try:
            yield text
        finally:
            text.detach()
    else:
        yield stream


def _is_binary(stream: IO[Any]) -> bool:
    return isinstance(stream, io.RawIOBase | io.BufferedIOBase | tempfile.SpooledTemporaryFile) or "b" in getattr(
        stream, "mode", ""
    )


class Unreadable(Exception):
    """The file cannot be read on from ``line``: not UTF-8, broken CSV, or a row beyond the size limit."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


_UNDECODABLE = re.compile("[\udc80-\udcff]")


class _BoundedLines:
    """The text stream line by line for the ``csv`` reader, refusing a row (all its lines) longer than
    :data:`MAX_RECORD_CHARS`: whatever the file holds, one row never takes more memory than that.
    ``readline`` is given the limit, so even a file without a single newline is not read whole."""

    def __init__(self, handle: IO[str]) -> None:
        self.handle = handle
        self.chars = 0  # of the row being read; reset by the reader's consumer after each row

    def __iter__(self) -> Iterator[str]:
        while True:
            line = self.handle.readline(MAX_RECORD_CHARS + 1)
            if not line:
                return
            self.chars += len(line)
            if self.chars > MAX_RECORD_CHARS:
                raise Unreadable(0, f"a row longer than {MAX_RECORD_CHARS:,} characters: is this a CSV file?")
            if _UNDECODABLE.search(line):  # bytes that are not UTF-8, kept as surrogates to name their line
                raise Unreadable(0, "the file is not UTF-8 text (save it as CSV UTF-8)")
            yield line


def records(handle: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """Every CSV record (header included) as (line number of its first line, raw cells), streamed with
    bounded memory; raises :class:`Unreadable` with the line where reading stopped."""
    lines = _BoundedLines(handle)
    reader = csv.reader(lines)
    previous = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except Unreadable as exc:
            raise Unreadable(previous + 1, exc.reason) from None
        except UnicodeDecodeError:
            raise Unreadable(previous + 1, "the file is not UTF-8 text (save it as CSV UTF-8)") from None
        except csv.Error as exc:
            raise Unreadable(previous + 1, f"not readable as CSV: {exc}") from None
        line, previous = previous + 1, reader.line_num
        lines.chars = 0
        yield line, cells


def data_rows(handle: IO[str], width: int, errors: ErrorList | None) -> Iterator[tuple[int, list[str]]]:
    """Data rows as (line number of the row's first line, stripped cells); blank rows are skipped."""
    stream = records(handle)
    next(stream, None)  # header
    for line, cells in stream:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != width:
            if errors is not None:
                errors.add(line, "", f"expected {width} cells, found {len(cells)}")
            continue
        # restore(): undo the "'" our exports put before formula-like cells, so exports round-trip.
        yield line, [restore(cell.strip()) for cell in cells]


#: Opening bytes of the files people upload by mistake instead of a CSV export, with what to call them.
BINARY_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook or a ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel (.xls) or Office file"),
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{\\rtf", "an RTF document"),
)
#: File names an import accepts (compared lower-cased); a name without an extension is judged by its content.
CSV_SUFFIXES = (".csv", ".txt")


def check_csv_type(source: str | Path, *, name: str = "") -> None:
    """Refuse, with what the file looks like instead, an upload that is not CSV text: a name with another
    extension (``report.xlsx``), a known binary format by its opening bytes (a workbook renamed ``.csv``), or
    NUL bytes in its first 64 KB (no text file has them). The content is what counts: a browser's or client's
    declared content type is not trusted."""
    suffix = Path(name).suffix.lower()
    if suffix and suffix not in CSV_SUFFIXES:
        raise ImportRefused(f"Only .csv files can be imported, not {suffix}: export the data as CSV UTF-8.")
    with open(source, "rb") as handle:
        head = handle.read(64 * 1024)
    for signature, what in BINARY_SIGNATURES:
        if head.startswith(signature):
            raise ImportRefused(f"This file is {what}, not CSV text: export the data as CSV UTF-8.")
    if b"\x00" in head:
        raise ImportRefused("This file is binary, not CSV text: export the data as CSV UTF-8.")


def count_rows(source: str | Path, *, limit: int, name: str = "") -> int:
    """The data rows of a stored file (blank rows not counted), read as the import reads it, stopping
    past ``limit``. Raises :class:`ImportRefused` when the file is not CSV text (:func:`check_csv_type`, with
    ``name`` the uploaded file's name), has more rows than ``limit`` or cannot be read as UTF-8 CSV: an
    upload is refused at the door rather than queued to fail."""
    check_csv_type(source, name=name)
    rows = 0
    try:
        with open_source(source) as handle:
            stream = records(handle)
            next(stream, None)
            for _, cells in stream:
                if any(cell.strip() for cell in cells):
                    rows += 1
                    if rows > limit:
                        raise ImportRefused(
                            f"The file has more than {limit:,} rows, this organization's limit per file."
                        )
    except Unreadable as exc:
        raise ImportRefused(f"Line {exc.line}: {exc.reason}.") from None
    return rows
