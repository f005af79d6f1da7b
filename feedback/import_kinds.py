"""The ``survey_responses`` CSV import kind (spec §8): the survey history a team brings from its previous
tool (Delighted, Qualtrics, AskNicely, a spreadsheet).

Columns ``external_id, account_external_id, contact_external_id, kind, score, responded_at, comment``.
Rules: upsert by ``external_id`` (required, once per file); the account must exist in the organization;
``contact_external_id`` may be empty, and when given must name a contact of that same account; ``kind`` is
``nps``, ``csat`` or ``ces`` and ``score`` a whole number in its range (0–10, 1–5, 1–7); ``responded_at``
is a date, read as **midnight in the organization's time zone** (so the response falls on that day in every
figure, which buckets days in that zone), or an ISO date-time, **UTC unless it carries an offset** (spec §8:
unlike tickets, a time of day is not read in the organization's time zone); ``comment`` is free text (10,000
characters at most). All or nothing: a file with any bad row imports nothing and reports every bad row
with its line and column.

Imported responses count in every figure exactly like answered ones (source ``import``). They raise no
``survey.response`` event: history must not fire playbooks. Health recomputes after the import (the
hook health registers for every kind).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from accounts.importing import ExternalIdKind
from accounts.models import Contact
from cs_platform.imports.base import chunks, register
from cs_platform.imports.parsers import DATE_RE, parse_choice, parse_int, parse_moment, parse_text

from .models import SCORE_RANGES, ResponseSource, SurveyResponse

__all__ = ["SurveyResponseKind"]

KINDS = ("nps", "csat", "ces")
_UTC = ZoneInfo("UTC")


@register
class SurveyResponseKind(ExternalIdKind):
    """Survey responses, upserted by external id."""

    name = "survey_responses"
    label = "Survey responses"
    columns = ("external_id", "account_external_id", "contact_external_id", "kind", "score", "responded_at", "comment")
    order = 80
    model = SurveyResponse
    FIELDS = ("account_id", "contact_id", "kind", "score", "responded_at", "comment")
    column_help: ClassVar[dict[str, str]] = {
        "responded_at": "a date (YYYY-MM-DD) is midnight in the organization's time zone, so the answer counts on "
        "that day; a date-time is UTC unless it carries an offset (2026-03-01T14:30:00+01:00)",
    }

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        # contact external id -> [(line, account external id of that line)]
        self.contact_lines: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self.contacts: dict[str, int] = {}

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        row = {
            "external_id": self.cell(line, cells, "external_id", lambda v: parse_text(v, 120), required=True),
            "account": self.cell(line, cells, "account_external_id", required=True),
            "contact": self.cell(line, cells, "contact_external_id"),
            "kind": self.cell(line, cells, "kind", lambda v: parse_choice(v.lower(), KINDS), required=True),
            "score": self.cell(line, cells, "score", parse_int, required=True),
            "responded_at": self.cell(line, cells, "responded_at", self.responded_at, required=True),
            "comment": self.cell(line, cells, "comment", lambda v: parse_text(v, 10_000)) or "",
        }
        if row["kind"] and row["score"] is not None:
            low, high = SCORE_RANGES[row["kind"]]
            if not low <= row["score"] <= high:
                self.errors.add(line, "score", f"{row['score']} is outside {low}–{high} for {row['kind']}")
        return row

    def responded_at(self, value: str) -> datetime:
        """A date: midnight in the organization's time zone; a date-time: UTC unless it carries an offset."""
        return parse_moment(value, self.tz if DATE_RE.match(value) else _UTC).astimezone(UTC)

    def check(self, line: int, cells: list[str]) -> None:
        super().check(line, cells)
        contact = cells[self.col["contact_external_id"]]
        if contact:
            self.contact_lines[contact].append((line, cells[self.col["account_external_id"]]))

    def finish(self) -> None:
        super().finish()
        found: dict[str, tuple[int, str | None]] = {}
        for chunk in chunks(sorted(self.contact_lines)):
            found.update(
                (ext, (pk, account_ext))
                for ext, pk, account_ext in Contact.objects.for_org(self.org)
                .filter(external_id__in=chunk)
                .values_list("external_id", "id", "account__external_id")
            )
        self.contacts = {}
        for ext, lines in self.contact_lines.items():
            if ext not in found:
                for line, _account in lines:
                    self.errors.add(line, "contact_external_id", f"no contact with external_id {ext}")
                continue
            pk, account_ext = found[ext]
            self.contacts[ext] = pk
            for line, account in lines:
                if account and account != account_ext:
                    self.errors.add(line, "contact_external_id", f"contact {ext} belongs to another account")
        self.contact_lines = defaultdict(list)

    def values(self, row: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "account_id": self.accounts[row["account"]],
            "contact_id": self.contacts[row["contact"]] if row["contact"] else None,
            "kind": row["kind"],
            "score": row["score"],
            "responded_at": row["responded_at"],
            "comment": row["comment"],
        }

    def new(self, external_id: str, values: dict[str, Any]) -> Any:
        return SurveyResponse(
            organization_id=self.org.pk, external_id=external_id, source=ResponseSource.IMPORT, **values
        )
