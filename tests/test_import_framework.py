"""The import framework (cs_platform.imports): the registry of kinds, a kind added in one file, hooks, the
published task name, and the layer rule (the framework imports no app)."""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from accounts.forms import ImportForm
from accounts.importing import AccountRowKind
from accounts.models import Activity
from cs_platform.imports import COLUMNS, ImportKind, UnsupportedKind, check_kind, import_csv, registry
from cs_platform.imports.parsers import parse_text
from health.import_kinds import recompute_after_import

from .factories import AccountFactory

pytestmark = pytest.mark.django_db

APPS = ("accounts", "health", "renewals", "playbooks", "feedback", "value")
PACKAGE = Path(__file__).resolve().parent.parent / "cs_platform" / "imports"

CONTRACT = {  # spec §8: names, columns and their order are public
    "accounts": [
        "external_id", "name", "domain", "industry", "region", "employees", "owner_email",
        "parent_external_id", "touch_model", "lifecycle_stage", "customer_since",
    ],
    "contacts": ["external_id", "account_external_id", "name", "email", "title", "roles", "active"],
    "contracts": [
        "account_external_id", "contract_number", "start_date", "end_date", "status", "product_sku",
        "product_name", "quantity", "annual_unit_price", "discount", "seats",
    ],
    "activities": ["account_external_id", "type", "occurred_at", "author_email", "summary"],
    "usage": ["account_external_id", "date", "metric", "value"],
    "tickets": ["external_id", "account_external_id", "opened_at", "priority", "status", "resolved_at"],
    "invoices": ["external_id", "account_external_id", "due_date", "amount", "paid_at"],
    "survey_responses": [
        "external_id", "account_external_id", "contact_external_id", "kind", "score", "responded_at", "comment",
    ],
    "acquisition_costs": ["account_external_id", "segment", "acquisition_cost", "onboarding_cost", "notes"],
}  # fmt: skip


def test_the_apps_register_every_kind_of_the_contract_in_load_order():
    assert dict(COLUMNS) == CONTRACT
    assert list(COLUMNS) == list(CONTRACT)  # the order to load files in
    assert {kind.name: kind.__module__ for kind in registry.kinds()} == {
        "accounts": "accounts.import_kinds",
        "contacts": "accounts.import_kinds",
        "contracts": "accounts.import_kinds",
        "activities": "accounts.import_kinds",
        "usage": "health.import_kinds",
        "tickets": "health.import_kinds",
        "invoices": "health.import_kinds",
        "survey_responses": "feedback.import_kinds",
        "acquisition_costs": "value.import_kinds",
    }
    with pytest.raises(UnsupportedKind, match="unknown kind 'surveys'; importable: accounts, contacts"):
        check_kind("surveys")


def test_health_recomputes_after_every_kind_through_a_hook():
    for name in CONTRACT:
        assert registry.hooks_for(name).count(recompute_after_import) == 1


def test_a_name_is_registered_once():
    class Impostor(ImportKind):
        name = "accounts"
        columns = ("x",)

    with pytest.raises(ImproperlyConfigured, match="already registered"):
        registry.register(Impostor)
    with pytest.raises(ImproperlyConfigured, match="needs a name and its columns"):
        registry.register(type("Nameless", (ImportKind,), {}))


CALLS: list[tuple[str, int, str]] = []


def note_hook(organization_id: int, result: Any) -> None:
    CALLS.append(("own", organization_id, result.kind))


class NoteKind(AccountRowKind):
    """What an app adds in its ``import_kinds.py``: internal notes, appended as activities."""

    name = "notes"
    label = "Notes"
    columns = ("account_external_id", "text")
    order = 45
    hooks = (note_hook,)

    def parse(self, line: int, cells: list[str]) -> dict[str, Any]:
        return {
            "account": self.cell(line, cells, "account_external_id", required=True),
            "text": self.cell(line, cells, "text", lambda v: parse_text(v, 20), required=True),
        }

    def check(self, line: int, cells: list[str]) -> None:
        self.note_account(line, self.parse(line, cells)["account"])

    def write(self, rows: Iterator[tuple[int, list[str]]], progress: Callable[[int], None]) -> None:
        def flush(batch: list[dict[str, Any]]) -> None:
            Activity.all_orgs.bulk_create(
                Activity(
                    organization_id=self.org.pk,
                    account_id=self.accounts[row["account"]],
                    type="note",
                    occurred_at=timezone.now(),
                    summary=row["text"],
                )
                for row in batch
            )
            self.result.created += len(batch)

        self.batched(rows, progress, flush)


@pytest.fixture
def notes():
    """Register the kind (as an app's import_kinds module would) and a hook for every kind."""
    CALLS.clear()

    def every_import(organization_id: int, result: Any) -> None:
        CALLS.append(("every", organization_id, result.kind))

    registry.register(NoteKind)
    registry.add_hook(every_import)
    yield CALLS
    registry.unregister("notes")
    registry.remove_hook(every_import)


def test_a_kind_declared_in_one_place_is_importable_everywhere(org, notes, django_capture_on_commit_callbacks):
    AccountFactory(organization=org, external_id="A1")
    assert list(COLUMNS)[4] == "notes" and COLUMNS["notes"] == ["account_external_id", "text"]
    assert ("notes", "Notes") in ImportForm().fields["kind"].choices  # the upload form and the API offer it

    bad = import_csv(
        org, "notes", io.StringIO("account_external_id,text\nA1,hello\nA2,\nA1,far too long a note here\n")
    )
    assert [str(e) for e in bad.errors] == [
        "line 3, column account_external_id: no account with external_id A2",
        "line 3, column text: is required",
        "line 4, column text: longer than 20 characters",
    ]
    good = io.StringIO("account_external_id,text\nA1,hello\nA1,again\n")
    dry = import_csv(org, "notes", good, dry_run=True)
    assert dry.ok and dry.created == 2 and not Activity.objects.for_org(org).exists()
    assert notes == []  # neither a failed file nor a dry run reacts

    with django_capture_on_commit_callbacks() as callbacks:
        real = import_csv(org, "notes", io.StringIO("account_external_id,text\nA1,hello\nA1,again\n"))
    assert real.ok and Activity.objects.for_org(org).count() == 2
    assert notes == [("own", org.pk, "notes"), ("every", org.pk, "notes")]  # the kind's hooks, then everyone's
    assert len(callbacks) == 1  # health's hook: one recompute of the organization after commit


def test_the_run_task_keeps_its_published_name():
    """Queued messages name ``accounts.tasks.run_import``: a fresh worker process registers the task under
    that name through its autodiscovery alone."""
    from cs_platform.imports.tasks import run_import

    assert run_import.name == "accounts.tasks.run_import"
    probe = (
        "from cs_platform.celery import app; app.loader.import_default_modules(); "
        "task = app.tasks['accounts.tasks.run_import']; print(task.run.__module__)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "cs_platform.settings"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "cs_platform.imports.tasks"


def _imported_modules(path: Path) -> Iterator[str]:
    """Every module a file imports, at any depth (function-level imports count too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_the_framework_imports_no_app():
    for path in sorted(PACKAGE.glob("*.py")):
        for module in _imported_modules(path):
            assert module.split(".")[0] not in APPS, f"{path.name} imports {module}"
