"""Seams of the composed pages: what apps above accounts add to Account 360 and My book.

accounts sits below health, renewals, playbooks and feedback, so its views cannot import theirs. Each of
those apps registers, in its ``AppConfig.ready()``, what it contributes:

* an :class:`AccountPanel` for Account 360: a context provider ``(request, account) -> dict`` (one call
  per page, whatever it queries) and a template included in the page's ``top`` slot (above the timeline)
  or ``bottom`` slot (after the success plan), in ``order``;
* a context provider ``(request) -> dict`` for a named page (``"my-book"``), merged into its context;
* a :class:`PagePanel` for a named page: a template included in the page's panel row, in ``order``;
* an :class:`AccountColumn` for a page's accounts table: a header, a cell template and a provider
  ``(request, account_ids) -> {account_id: value}`` called once with the ids of the rows shown (one query,
  whatever the page size).

Adding a panel therefore touches only the contributing app (its ``apps.py``, a function, a template),
never ``accounts/views.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

__all__ = [
    "SLOTS",
    "AccountColumn",
    "AccountPanel",
    "PagePanel",
    "account_columns",
    "account_panels",
    "page_context",
    "page_panels",
    "register_account_column",
    "register_account_panel",
    "register_page_context",
    "register_page_panel",
]

#: Where a panel goes on Account 360: above the timeline, or after the success plan.
SLOTS = ("top", "bottom")

PanelContext = Callable[[HttpRequest, Any], dict[str, Any]]
PageContext = Callable[[HttpRequest], dict[str, Any]]
ColumnValues = Callable[[HttpRequest, list[int]], dict[int, Any]]


@dataclass(frozen=True)
class AccountPanel:
    """One app's panel on Account 360. ``context`` may be ``None`` (a static template) and ``template``
    may be ``None`` (the context only feeds the page's header, for instance)."""

    key: str
    slot: str
    order: int
    template: str | None = None
    context: PanelContext | None = None

    def __post_init__(self) -> None:
        if self.slot not in SLOTS:
            raise ValueError(f"panel {self.key!r}: slot must be one of {', '.join(SLOTS)}, not {self.slot!r}")


@dataclass(frozen=True)
class PagePanel:
    """One app's panel on a named page (``"my-book"``): a template included in the page's panel row.
    Its data comes from the same app's page context provider (keep it lazy when the panel is not always
    shown, so that the page's query count does not depend on it)."""

    key: str
    order: int
    template: str


@dataclass(frozen=True)
class AccountColumn:
    """One app's column in a page's accounts table: ``values(request, account_ids)`` answers the cells of
    the rows shown at once; ``template`` renders one cell from ``value`` (``None`` when absent)."""

    key: str
    order: int
    header: str
    template: str
    values: ColumnValues


_panels: dict[str, AccountPanel] = {}
_page_contexts: dict[str, dict[str, PageContext]] = {}
_page_panels: dict[str, dict[str, PagePanel]] = {}
_account_columns: dict[str, dict[str, AccountColumn]] = {}


def register_account_panel(panel: AccountPanel) -> None:
    """Add (or replace, by key: ``ready()`` may run twice in tests) a panel of Account 360."""
    _panels[panel.key] = panel


def account_panels() -> list[AccountPanel]:
    """The registered panels in display order (``order``, then key: never registration order)."""
    return sorted(_panels.values(), key=lambda panel: (panel.order, panel.key))


def register_page_context(page: str, key: str, provider: PageContext) -> None:
    """Let an app add context to the page named ``page`` (``"my-book"``); ``key`` names the contribution."""
    _page_contexts.setdefault(page, {})[key] = provider


def page_context(page: str, request: HttpRequest) -> dict[str, Any]:
    """Every app's contribution to ``page``'s context, merged in key order."""
    merged: dict[str, Any] = {}
    for _key, provider in sorted(_page_contexts.get(page, {}).items()):
        merged.update(provider(request))
    return merged


def register_page_panel(page: str, panel: PagePanel) -> None:
    """Add (or replace, by key) a panel of the page named ``page``."""
    _page_panels.setdefault(page, {})[panel.key] = panel


def page_panels(page: str) -> list[PagePanel]:
    """The panels of ``page`` in display order (``order``, then key)."""
    return sorted(_page_panels.get(page, {}).values(), key=lambda panel: (panel.order, panel.key))


def register_account_column(page: str, column: AccountColumn) -> None:
    """Add (or replace, by key) a column of the accounts table of the page named ``page``."""
    _account_columns.setdefault(page, {})[column.key] = column


def account_columns(page: str) -> list[AccountColumn]:
    """The extra columns of ``page``'s accounts table in display order (``order``, then key)."""
    return sorted(_account_columns.get(page, {}).values(), key=lambda column: (column.order, column.key))
