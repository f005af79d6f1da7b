"""Seams of the composed pages: what apps above accounts add to Account 360 and My book.

accounts sits below health, renewals, playbooks and feedback, so its views cannot import theirs. Each of
those apps registers, in its ``AppConfig.ready()``, what it contributes:

* an :class:`AccountPanel` for Account 360: a context provider ``(request, account) -> dict`` (one call
  per page, whatever it queries) and a template included in the page's ``top`` slot (above the timeline)
  or ``bottom`` slot (after the success plan), in ``order``;
* a context provider ``(request) -> dict`` for a named page (``"my-book"``), merged into its context.

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
    "AccountPanel",
    "account_panels",
    "page_context",
    "register_account_panel",
    "register_page_context",
]

#: Where a panel goes on Account 360: above the timeline, or after the success plan.
SLOTS = ("top", "bottom")

PanelContext = Callable[[HttpRequest, Any], dict[str, Any]]
PageContext = Callable[[HttpRequest], dict[str, Any]]


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


_panels: dict[str, AccountPanel] = {}
_page_contexts: dict[str, dict[str, PageContext]] = {}


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
