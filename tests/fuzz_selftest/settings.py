"""The project's settings with one extra, deliberately broken endpoint (``tests/fuzz_selftest/urls.py``)."""

from cs_platform.settings import *  # noqa: F403

ROOT_URLCONF = "tests.fuzz_selftest.urls"
