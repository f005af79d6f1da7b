"""Page-number pagination with ``results``, ``next``, ``previous`` and ``count`` (spec §8).

DRF's own pagination forgives bad input silently: ``page_size=null`` or ``page_size=0`` falls back to
the default, ``page_size=100000`` is cut to the maximum, and ``page=last`` is a magic word. Here a
``page`` or ``page_size`` that is not a whole number in range is a ``400`` naming the parameter, and
the OpenAPI document declares exactly these bounds; a page past the last one stays a ``404``
("Invalid page."), as DRF answers. Sent empty, either means its default.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


def _whole_number(request: Any, param: str, *, maximum: int | None = None) -> int | None:
    raw = request.query_params.get(param)
    if not raw:  # not sent, or sent empty (``?page=``): the default, as for every optional parameter
        return None
    value = int(raw) if raw.isascii() and raw.isdigit() else 0
    if value < 1 or (maximum is not None and value > maximum):
        bounds = f"between 1 and {maximum}" if maximum is not None else "1 or more"
        raise ValidationError({param: [f"Enter a whole number {bounds}."]})
    return value


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    last_page_strings = ()  # ``page=last`` is not a page number; the schema says integer

    def check_parameters(self, request: Any) -> None:
        """400 for a ``page`` or ``page_size`` that is not a whole number in range (also where they do not
        apply, such as a CSV export of every row: the document declares them on the operation)."""
        _whole_number(request, self.page_query_param)
        _whole_number(request, self.page_size_query_param, maximum=self.max_page_size)

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> Any:
        self.check_parameters(request)
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request: Any) -> int:
        size = _whole_number(request, self.page_size_query_param, maximum=self.max_page_size)
        return self.page_size if size is None else size

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = "A page number (1 is the first); past the last page: 404."
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size, default=self.page_size)
                parameter["description"] = f"Rows per page, 1 to {self.max_page_size} (default {self.page_size})."
        return parameters
