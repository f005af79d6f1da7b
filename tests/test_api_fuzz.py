"""The CI fuzz run (``scripts/api_fuzz.py``) fails when a response violates its own schema.

It runs the real script, gunicorn and schemathesis included, on a settings module that adds one
deliberately broken endpoint (``tests/fuzz_selftest``: documented as ``{"count": <integer>}``, answering a
string) beside a correct one (``/api/v1/me/``): the run must exit non-zero and blame the broken one only.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("DATABASE_URL", "")

needs_postgres = [
    pytest.mark.skipif(
        not DATABASE_URL.startswith(("postgres://", "postgresql://")),
        reason="the fuzz run serves the app with gunicorn on Postgres (set DATABASE_URL)",
    ),
    pytest.mark.postgres,
]


def _script():
    spec = importlib.util.spec_from_file_location("api_fuzz", ROOT / "scripts" / "api_fuzz.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scenario(phase: str, cases: dict) -> str:
    return json.dumps({"ScenarioFinished": {"phase": phase, "recorder": {"label": "x", "cases": cases}}})


def _case(method: str, path: str, parent: str | None = None, transition: bool = False) -> dict:
    node = {"value": {"method": method, "path": path}, "is_transition_applied": transition}
    if parent:
        node["parent_id"] = parent
    if transition:
        node["transition"] = {"id": "link"}
    return node


def test_the_report_names_the_operations_without_a_case_and_counts_the_stateful_chains(tmp_path, capsys):
    fuzz = _script()
    report = tmp_path / "ndjson-1.ndjson"
    lines = [
        json.dumps({"Initialize": {"seed": 1}}),
        _scenario("fuzzing", {"a": _case("GET", "/api/v1/accounts/")}),
        _scenario("fuzzing", {}),  # an operation skipped in a phase: no case
        _scenario(
            "stateful",
            {
                "c": _case("POST", "/api/v1/accounts/"),
                "r": _case("GET", "/api/v1/accounts/{id}/", "c", transition=True),
                "u": _case("PATCH", "/api/v1/accounts/{id}/", "c", transition=True),
                "d": _case("DELETE", "/api/v1/accounts/{id}/", "c", transition=True),
                "n": _case("GET", "/api/v1/accounts/{id}/", "r"),  # derived by a check (no auth): not a step
            },
        ),
        _scenario("stateful", {"x": _case("GET", "/api/v1/teams/")}),
    ]
    report.write_text("\n".join(lines) + "\n")
    found = fuzz.read_report(report)
    assert found["cases"] == {"fuzzing": 1, "stateful": 6}
    assert (found["scenarios"], found["multi_step"], found["longest"]) == (2, 1, 4)
    assert found["crud"]["create→read→update→delete"] == 1
    assert ("POST /api/v1/accounts/", "DELETE /api/v1/accounts/{id}/") in found["links"]

    operations = {"GET /api/v1/accounts/", "POST /api/v1/accounts/", "DELETE /api/v1/accounts/{id}/", "PUT /api/v1/x/"}
    missing = fuzz.summarize("demo", fuzz.merge_reports([found]), operations, 1.0)
    assert missing == ["PUT /api/v1/x/"]
    assert "demo: 3/4 operations exercised" in capsys.readouterr().out


@needs_postgres[0]
@needs_postgres[1]
def test_fuzz_run_fails_on_a_response_that_violates_its_schema(tmp_path):
    database = DATABASE_URL.rsplit("/", 1)[-1].split("?")[0]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.fuzz_selftest.settings"}
    result = subprocess.run(
        [sys.executable, "scripts/api_fuzz.py", "--max-examples", "2", "--admin-only", "--report-dir", str(tmp_path)]
        + ["--database-name", f"{database}_fuzz_selftest", "--"]
        + ["--include-path-regex", r"^/api/v1/(me|selftest/broken)/$"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    failures = output.split("= FAILURES =", 1)[-1]
    assert "GET /api/v1/selftest/broken/" in failures, output[-3000:]
    assert "Response violates schema" in failures
    assert re.search(r'"not a number" is not of type "integer"', failures)
    assert "GET /api/v1/me/ " not in failures  # the correct operation passed every check
    assert "Selected: 2/" in output  # both operations ran (and nothing else)
    assert list(tmp_path.glob("junit-*.xml"))  # the report CI keeps
