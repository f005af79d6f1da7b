"""CI proves its environment: with ``RETAIN_REQUIRE_SERVICES=1`` the suite refuses to pass on less.

Loaded by ``tests/conftest.py``. Locally (variable unset) tests that need a service skip with their
reason, so ``make test`` works with nothing installed. In CI (``.ci/run`` sets the variable):

* the session stops before the first test (exit code 4) unless the database is PostgreSQL and Redis
  answers ``PING`` at ``REDIS_URL`` (:func:`environment_problems`);
* a test marked ``postgres``, ``redis``, ``worker``, ``browser`` or ``imap`` that skips **fails** instead, with
  the skip's reason, and so does a test module skipped at collection (e.g. Playwright not installed):
  a green CI run therefore means those tests ran.

``python -m tests.require_services`` runs the environment check alone (``.ci/run`` does, first).
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest

ENV = "RETAIN_REQUIRE_SERVICES"
#: Markers of tests that need a real service; under ``RETAIN_REQUIRE_SERVICES=1`` they may not skip.
SERVICE_MARKERS = {
    "postgres": "needs PostgreSQL (DATABASE_URL=postgres://...)",
    "redis": "talks to a real Redis server (REDIS_URL)",
    "worker": "runs a real Celery worker subprocess on the Redis broker",
    "browser": "drives real headless Chromium through Playwright",
    "imap": "runs a real Dovecot IMAP server subprocess (scripts/ensure_dovecot.sh installs it)",
}


def required() -> bool:
    return os.environ.get(ENV, "") not in ("", "0")


def environment_problems() -> list[str]:
    """What is missing for a CI run: a PostgreSQL database, a reachable Redis. Empty when all is well."""
    from django.conf import settings

    problems = []
    engine = settings.DATABASES["default"]["ENGINE"]
    if not engine.endswith("postgresql"):
        problems.append(f"the database is not PostgreSQL (ENGINE {engine}): set DATABASE_URL=postgres://...")
    url = getattr(settings, "REDIS_URL", "") or ""
    if not url.startswith(("redis://", "rediss://")):
        problems.append("REDIS_URL is not set: the cache, the broker and the debounce need Redis")
    else:
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
        except redis.RedisError as error:
            problems.append(f"Redis was not reached at {url}: {error}")
    return problems


def pytest_report_header(config: pytest.Config) -> list[str]:
    from django.conf import settings

    database = settings.DATABASES["default"]
    chromium = shutil.which("chromium") or "not installed"
    dovecot = "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else "not installed"
    return [
        f"retain: database {database['ENGINE'].rsplit('.', 1)[-1]} {database.get('NAME')}; "
        f"redis {getattr(settings, 'REDIS_URL', '') or 'not set'}; chromium {chromium}; dovecot {dovecot}; "
        f"{ENV}={os.environ.get(ENV, '')!r}"
    ]


def pytest_sessionstart(session: pytest.Session) -> None:
    if not required():
        return
    problems = environment_problems()
    if problems:
        pytest.exit(f"{ENV}=1 but: " + "; ".join(problems), returncode=pytest.ExitCode.USAGE_ERROR)


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if required() and report.skipped and not hasattr(report, "wasxfail"):
        needs = [name for name in SERVICE_MARKERS if item.get_closest_marker(name)]
        if needs:
            report.outcome = "failed"
            report.longrepr = (
                f"{item.nodeid} is marked {', '.join(needs)} ({'; '.join(SERVICE_MARKERS[n] for n in needs)}) "
                f"and may not skip when {ENV}=1. It skipped: {_skip_reason(report)}"
            )
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    report = yield
    if required() and report.skipped and isinstance(collector, pytest.Module):
        report.outcome = "failed"
        report.longrepr = f"{collector.nodeid} was skipped at collection, which {ENV}=1 forbids: {_skip_reason(report)}"
    return report


def main() -> int:
    """``python -m tests.require_services``: the environment check alone, for ``.ci/run``."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    django.setup()
    problems = environment_problems()
    for problem in problems:
        print(f"environment check: {problem}", file=sys.stderr)
    if not problems:
        from django.conf import settings

        name = settings.DATABASES["default"]["NAME"]
        print(f"environment check: PostgreSQL ({name}) and Redis ({settings.REDIS_URL}) reached")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
