"""Give each pytest-xdist worker (``-n N``) its own Redis database, before Django reads its settings.

pytest-django already gives each worker its own test database (``test_<name>_gw0``...); Redis holds the
cache (rate-limit budgets, debounce keys, outbound slots) that tests clear and assert on, so two workers
sharing one Redis database would see each other's keys. Worker ``gwN`` uses database ``base + N + 1``
of the same server. Loaded with ``-p tests.xdist_env`` (pyproject's addopts) so it runs before
pytest-django imports the settings; the Celery worker subprocesses the tests start inherit the rewritten
``REDIS_URL`` and so share their test's database, as they do without xdist.
"""

from __future__ import annotations

import os
import re

_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
_url = os.environ.get("REDIS_URL", "")
if _worker.startswith("gw") and _url and not os.environ.get("RETAIN_XDIST_REDIS_BASE"):
    _match = re.match(r"^(redis://[^/]*)(?:/(\d+))?$", _url)
    if _match:
        base = int(_match.group(2) or 0)
        os.environ["RETAIN_XDIST_REDIS_BASE"] = _url  # the un-shifted URL, so a re-import never shifts twice
        os.environ["REDIS_URL"] = f"{_match.group(1)}/{(base + int(_worker[2:]) + 1) % 16}"
