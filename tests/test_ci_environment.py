"""The CI environment check itself (tests/require_services.py): it must fail on SQLite, without Redis,
and when a test marked as needing a service skips; and stay out of the way when not asked for.

Each case runs a separate process (the check, or a small pytest session) with a chosen environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
ON_SERVICES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql") and bool(settings.REDIS_URL)
POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/retain_env_check"  # never connected to by the check

INNER = """
import pytest

@pytest.mark.postgres
def test_marked_and_skipping():
    pytest.skip("pretend Postgres is missing")

@pytest.mark.redis
@pytest.mark.skipif(True, reason="pretend Redis is missing")
def test_marked_and_skipped_by_a_mark():
    pass

def test_unmarked_and_skipping():
    pytest.skip("an ordinary skip")

def test_passing():
    assert True
"""


def environment(**overrides: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "RETAIN_REQUIRE_SERVICES")}
    env.update({k: v for k, v in overrides.items() if v is not None})
    return env


def check(**overrides: str | None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.require_services"], cwd=ROOT, env=environment(**overrides),
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def inner_pytest(tmp_path: Path, source: str, **overrides: str | None) -> subprocess.CompletedProcess:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(source)
    command = [sys.executable, "-m", "pytest", str(test_file), "-p", "tests.require_services", "-p", "no:cacheprovider",
               "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"), "-rs"]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, env=environment(**overrides), capture_output=True, text=True, timeout=300)


def test_the_check_refuses_sqlite_and_a_missing_redis():
    result = check()
    assert result.returncode == 1
    assert "the database is not PostgreSQL (ENGINE django.db.backends.sqlite3)" in result.stderr
    assert "REDIS_URL is not set" in result.stderr


def test_the_check_refuses_an_unreachable_redis():
    result = check(DATABASE_URL=POSTGRES_URL, REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 1
    assert "not PostgreSQL" not in result.stderr
    assert "Redis was not reached at redis://127.0.0.1:1/0" in result.stderr


def test_a_required_session_on_sqlite_stops_before_running_anything(tmp_path):
    result = inner_pytest(tmp_path, INNER, RETAIN_REQUIRE_SERVICES="1")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "RETAIN_REQUIRE_SERVICES=1 but: the database is not PostgreSQL" in result.stdout + result.stderr
    assert "passed" not in result.stdout


def test_without_the_requirement_marked_tests_simply_skip(tmp_path):
    result = inner_pytest(tmp_path, INNER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 3 skipped" in result.stdout
    assert "retain: database sqlite3" in result.stdout  # the header says what the run was on


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.skipif(not ON_SERVICES, reason="the requirement passes its check only with Postgres and Redis")
def test_with_the_requirement_a_marked_test_that_skips_fails_the_run(tmp_path):
    result = inner_pytest(
        tmp_path, INNER, RETAIN_REQUIRE_SERVICES="1", DATABASE_URL=os.environ["DATABASE_URL"],
        REDIS_URL=os.environ["REDIS_URL"],
    )  # fmt: skip
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    # a skip in the test body fails the test; a skipif mark (setup phase) makes it an error
    assert "1 failed, 1 passed, 1 skipped, 1 error" in result.stdout
    assert "is marked postgres" in result.stdout and "pretend Postgres is missing" in result.stdout
    assert "is marked redis" in result.stdout and "pretend Redis is missing" in result.stdout


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.skipif(not ON_SERVICES, reason="the requirement passes its check only with Postgres and Redis")
def test_with_the_requirement_a_module_skipped_at_collection_fails_the_run(tmp_path):
    source = 'import pytest\n\npytest.importorskip("a_module_that_is_not_installed")\n\n\ndef test_x():\n    pass\n'
    result = inner_pytest(
        tmp_path, source, RETAIN_REQUIRE_SERVICES="1", DATABASE_URL=os.environ["DATABASE_URL"],
        REDIS_URL=os.environ["REDIS_URL"],
    )  # fmt: skip
    assert result.returncode != 0, result.stdout + result.stderr
    assert "was skipped at collection, which RETAIN_REQUIRE_SERVICES=1 forbids" in result.stdout
