"""Sections that apps above health add to the scorecard editor page (``/o/<slug>/admin/scorecards/<id>/``).

Health may not import the apps above it, so it offers this registry and they fill it in their
``AppConfig.ready()`` (renewals: the backtest of the scorecard against past renewals). A section is a
template included after the editor and a context function ``(request, scorecard) -> dict`` called once per
page view (keep it to a fixed number of queries); its keys are merged into the page's context, so name
them after the section (``backtest_…``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

__all__ = ["ScorecardSection", "register_scorecard_section", "scorecard_section_context", "scorecard_sections"]

SectionContext = Callable[[HttpRequest, Any], dict[str, Any]]


@dataclass(frozen=True)
class ScorecardSection:
    """One app's section of the scorecard page: ``template`` rendered with the page's context plus what
    ``context(request, scorecard)`` returns."""

    key: str
    order: int
    template: str
    context: SectionContext | None = None


_sections: dict[str, ScorecardSection] = {}


def register_scorecard_section(section: ScorecardSection) -> None:
    """Add (or replace, by key: ``ready()`` may run twice in tests) a section of the scorecard page."""
    _sections[section.key] = section


def scorecard_sections() -> list[ScorecardSection]:
    """The registered sections in display order (``order``, then key)."""
    return sorted(_sections.values(), key=lambda section: (section.order, section.key))


def scorecard_section_context(request: HttpRequest, scorecard: Any) -> dict[str, Any]:
    """Every section's context merged, plus ``scorecard_sections`` (the list the template includes)."""
    context: dict[str, Any] = {}
    sections = scorecard_sections()
    for section in sections:
        if section.context is not None:
            context.update(section.context(request, scorecard))
    context["scorecard_sections"] = sections
    return context
