"""Settings from the environment: the demo defaults, and production refusing insecure ones.

Each case loads the settings module in a fresh interpreter with its own environment, as a server
would at start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import json
from django.conf import settings
names = {names!r}
out = {{}}
for name in names:
    value = getattr(settings, name, None)
    out[name] = value if isinstance(value, (str, int, bool, list, dict, type(None))) else repr(value)
print(json.dumps(out, default=str))
"""
CLEARED = (
    "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "RETAIN_ENV", "DEBUG", "ALLOWED_HOSTS", "WHITENOISE_USE_FINDERS",
    "CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SECURE",
    "CELERY_TASK_SOFT_TIME_LIMIT", "CELERY_TASK_TIME_LIMIT", "CELERY_VISIBILITY_TIMEOUT",
)  # fmt: skip


def load(tmp_path: Path, names: list[str], **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in CLEARED and not k.endswith("_FILE")}
    environ.update(DJANGO_SETTINGS_MODULE="cs_platform.settings", RETAIN_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(names=names)],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def values(tmp_path: Path, names: list[str], **env: str) -> dict:
    result = load(tmp_path, names, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


PRODUCTION = {"RETAIN_ENV": "production", "SECRET_KEY": "s" * 50, "ALLOWED_HOSTS": "retain.example.com"}


def test_the_demo_defaults_need_no_server(tmp_path):
    got = values(
        tmp_path,
        ["CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER", "CELERY_TASK_ACKS_LATE", "CELERY_TASK_REJECT_ON_WORKER_LOST",
         "CACHES", "DATABASES", "WHITENOISE_USE_FINDERS", "SESSION_COOKIE_SECURE", "CELERY_BROKER_TRANSPORT_OPTIONS"],
    )  # fmt: skip
    assert got["CELERY_BROKER_URL"] == "filesystem://"
    assert got["CELERY_BROKER_TRANSPORT_OPTIONS"]["control_folder"] == str(tmp_path / "queue" / "control")
    assert (tmp_path / "queue" / "out").is_dir()
    assert got["CELERY_TASK_ALWAYS_EAGER"] is False
    assert got["CELERY_TASK_ACKS_LATE"] is True and got["CELERY_TASK_REJECT_ON_WORKER_LOST"] is True
    assert got["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")
    assert got["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert got["WHITENOISE_USE_FINDERS"] is True and got["SESSION_COOKIE_SECURE"] is False


def test_redis_url_moves_the_broker_and_the_cache_to_redis(tmp_path):
    got = values(
        tmp_path,
        ["CELERY_BROKER_URL", "CACHES", "CELERY_BROKER_TRANSPORT_OPTIONS", "CELERY_TASK_TIME_LIMIT"],
        REDIS_URL="redis://redis.internal:6379/2",
    )
    assert got["CELERY_BROKER_URL"] == "redis://redis.internal:6379/2"
    assert got["CACHES"]["default"]["LOCATION"] == "redis://redis.internal:6379/2"
    # acks_late redelivers after the visibility timeout: it must outlast the longest task.
    assert got["CELERY_BROKER_TRANSPORT_OPTIONS"]["visibility_timeout"] > got["CELERY_TASK_TIME_LIMIT"]


def test_production_is_secure_by_default(tmp_path):
    got = values(
        tmp_path,
        ["SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "WHITENOISE_USE_FINDERS", "STORAGES", "DEBUG",
         "CELERY_TASK_ALWAYS_EAGER", "SECURE_PROXY_SSL_HEADER", "ALLOWED_HOSTS"],
        **PRODUCTION, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
    )  # fmt: skip
    assert got["SESSION_COOKIE_SECURE"] is True and got["CSRF_COOKIE_SECURE"] is True
    assert got["WHITENOISE_USE_FINDERS"] is False
    assert got["STORAGES"]["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert got["DEBUG"] is False and got["CELERY_TASK_ALWAYS_EAGER"] is False
    assert got["SECURE_PROXY_SSL_HEADER"] == "('HTTP_X_FORWARDED_PROTO', 'https')"
    assert got["ALLOWED_HOSTS"] == ["retain.example.com"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must be set"),
        ({"DEBUG": "1"}, "DEBUG must be off"),
        ({"SECURE_PROXY_SSL_HEADER": "X_FORWARDED_PROTO"}, "SECURE_PROXY_SSL_HEADER must be"),
        ({"CELERY_TASK_ALWAYS_EAGER": "maybe"}, "must be a boolean"),
        ({"REDIS_URL": "redis://r:6379/0", "CELERY_VISIBILITY_TIMEOUT": "60"}, "CELERY_VISIBILITY_TIMEOUT"),
        ({"RETAIN_ENV": "prod"}, "RETAIN_ENV must be"),
    ],
)
def test_production_refuses_insecure_or_malformed_settings_with_a_clear_message(tmp_path, env, message):
    result = load(tmp_path, ["DEBUG"], **{**PRODUCTION, **env})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
