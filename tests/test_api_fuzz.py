"""The CI fuzz run (``scripts/api_fuzz.py``) fails when a response violates its own schema.

It runs the real script, gunicorn and schemathesis included, on a settings module that adds one
deliberately broken endpoint (``tests/fuzz_selftest``: documented as ``{"count": <integer>}``, answering a
string) beside a correct one (``/api/v1/me/``): the run must exit non-zero and blame the broken one only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("DATABASE_URL", "")

pytestmark = [
    pytest.mark.skipif(
        not DATABASE_URL.startswith(("postgres://", "postgresql://")),
        reason="the fuzz run serves the app with gunicorn on Postgres (set DATABASE_URL)",
    ),
    pytest.mark.postgres,
]


def test_fuzz_run_fails_on_a_response_that_violates_its_schema(tmp_path):
    database = DATABASE_URL.rsplit("/", 1)[-1].split("?")[0]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.fuzz_selftest.settings"}
    result = subprocess.run(
        [sys.executable, "scripts/api_fuzz.py", "--max-examples", "2", "--report-dir", str(tmp_path)]
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
