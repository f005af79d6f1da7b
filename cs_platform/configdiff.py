"""Field-by-field differences between two JSON-ready configurations (drafts against what is published).

A scorecard definition, a segment's rules or a playbook's trigger and actions are nested dicts and
lists. :func:`diff` walks both and returns one row per leaf that differs, addressed by a path a
reader can follow (``components[adoption].weight``): list items that carry a ``key`` (scorecard
components and groups) are matched by that key rather than by position, so reordering or inserting
one component does not make every later one look changed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MISSING", "diff"]


class _Missing:
    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "MISSING"


MISSING: Any = _Missing()


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    """``{key: item}`` when every item is a dict with a distinct string ``key``; else ``None``."""
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or item["key"] in out:
            return None
        out[item["key"]] = item
    return out


def _walk(before: Any, after: Any, path: str, rows: list[dict[str, Any]]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for name in sorted(set(before) | set(after), key=str):
            _walk(before.get(name, MISSING), after.get(name, MISSING), f"{path}.{name}" if path else str(name), rows)
        return
    if isinstance(before, list) and isinstance(after, list):
        keyed_before, keyed_after = _keyed(before), _keyed(after)
        if keyed_before is not None and keyed_after is not None:
            order = list(keyed_before) + [k for k in keyed_after if k not in keyed_before]
            for key in order:
                _walk(keyed_before.get(key, MISSING), keyed_after.get(key, MISSING), f"{path}[{key}]", rows)
            return
        for i in range(max(len(before), len(after))):
            _walk(
                before[i] if i < len(before) else MISSING, after[i] if i < len(after) else MISSING, f"{path}[{i}]", rows
            )
        return
    if before is MISSING and after is MISSING:
        return
    if before == after and type(before) is type(after):
        return
    rows.append(
        {
            "path": path or "(whole)",
            "change": "added" if before is MISSING else "removed" if after is MISSING else "changed",
            "before": None if before is MISSING else before,
            "after": None if after is MISSING else after,
        }
    )


def diff(before: Any, after: Any) -> list[dict[str, Any]]:
    """Every leaf that differs between ``before`` and ``after``: ``[{"path", "change", "before",
    "after"}]`` with ``change`` one of ``added``/``removed``/``changed``, in document order."""
    rows: list[dict[str, Any]] = []
    _walk(before, after, "", rows)
    return rows
