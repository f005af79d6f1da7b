"""Request body parsers of the API: JSON that is refused with its reason, never a server error.

Python's JSON decoder recurses once per nesting level, so ``[[[[…`` 200,000 levels deep raises
``RecursionError`` (a 500 that clients retry forever), and a body just under that limit would make
every later recursive walk (validation, error flattening) fail the same way. Bodies are therefore
refused with ``400`` past :data:`MAX_JSON_DEPTH` levels, far deeper than any resource needs (segment
rules, scorecard definitions and custom fields nest a handful of levels).
"""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_JSON_DEPTH = 64


def json_depth_exceeds(data: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``data`` nests objects or arrays more than ``limit`` levels deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing too deeply nested documents with ``400`` and the reason."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        too_deep = f"JSON parse error - the document nests deeper than {MAX_JSON_DEPTH} levels."
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(too_deep) from None
        if json_depth_exceeds(data):
            raise ParseError(too_deep)
        return data
