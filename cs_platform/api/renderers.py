"""``?format=csv`` on the API: a renderer for small answers; lists stream (see ``CSVExportMixin``)."""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import BaseRenderer

from cs_platform.exports import csv_lines


class CSVRenderer(BaseRenderer):
    """Renders one object, or a list of objects, as CSV: a header row from the keys, one row per object.

    Lists of an ``OrgScopedViewSet`` never reach it: they stream every filtered row. It renders the
    other answers asked for with ``?format=csv`` (one object, an action's list).
    """

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        if isinstance(data, dict) and isinstance(data.get("results"), list):
            data = data["results"]
        rows = data if isinstance(data, list) else [data]
        header: list[str] = []
        for row in rows:
            for key in row if isinstance(row, dict) else ["value"]:
                if key not in header:
                    header.append(key)
        values = ([row.get(k) for k in header] if isinstance(row, dict) else [row] for row in rows)
        return "".join(csv_lines(header, values)).encode()
