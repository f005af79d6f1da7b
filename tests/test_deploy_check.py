"""``manage.py check --deploy`` with the production settings prints no warning (issue 16, Acceptance).

Each case runs the command in a fresh interpreter with the environment a production deploy sets (as
docker-compose.yml does): RETAIN_ENV=production, a long random secret key, the host names, TLS ending at a
proxy. The demo's plain-HTTP defaults are checked too, and so is the escape hatch for trying the production
settings on plain HTTP: there the deploy check must speak up.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from tests.test_settings import CLEARED, values

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_DEPLOY = {
    "RETAIN_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "retain.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://retain.example.com",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}


def check_deploy(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    inherited = (*CLEARED, "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_PRELOAD", "METRICS_TOKEN")
    environ = {k: v for k, v in os.environ.items() if k not in inherited and not k.endswith("_FILE")}
    environ.update(DJANGO_SETTINGS_MODULE="cs_platform.settings", RETAIN_VAR_DIR=str(tmp_path), **env)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_check_deploy_with_the_production_settings_prints_no_warning(tmp_path):
    result = check_deploy(tmp_path, **PRODUCTION_DEPLOY)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    for marker in ("WARNINGS", "ERRORS", "security.W", "security.E", "?: ("):
        assert marker not in output, output


def test_production_turns_on_the_https_redirect_hsts_and_secure_cookies(tmp_path):
    got = values(
        tmp_path,
        ["SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
         "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SILENCED_SYSTEM_CHECKS"],
        **PRODUCTION_DEPLOY,
    )  # fmt: skip
    assert got["SECURE_SSL_REDIRECT"] is True
    assert got["SECURE_HSTS_SECONDS"] == 31_536_000  # 365 days × 86,400 s
    assert got["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert got["SESSION_COOKIE_SECURE"] is True and got["CSRF_COOKIE_SECURE"] is True
    # Preloading is the operator's opt-in; only its reminder is silenced, and only while it is off.
    assert got["SECURE_HSTS_PRELOAD"] is False and got["SILENCED_SYSTEM_CHECKS"] == ["security.W021"]
    assert values(tmp_path, ["SILENCED_SYSTEM_CHECKS"], **PRODUCTION_DEPLOY, SECURE_HSTS_PRELOAD="1") == {
        "SILENCED_SYSTEM_CHECKS": []
    }


def test_the_demo_stays_on_plain_http(tmp_path):
    got = values(tmp_path, ["SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE"])
    assert got == {"SECURE_SSL_REDIRECT": False, "SECURE_HSTS_SECONDS": 0, "SESSION_COOKIE_SECURE": False}


def test_production_on_plain_http_is_possible_but_the_deploy_check_says_so(tmp_path):
    # docker compose on a laptop without TLS: the operator switches HTTPS off explicitly, and is warned.
    plain = {"SECURE_SSL_REDIRECT": "0", "SECURE_HSTS_SECONDS": "0", "SESSION_COOKIE_SECURE": "0"}
    result = check_deploy(tmp_path, **PRODUCTION_DEPLOY, **plain)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in output, output


def test_the_docker_compose_defaults_pass_the_deploy_check(tmp_path):
    # The environment docker-compose.yml gives every service, with .env supplying only what it requires.
    import re

    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    required = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "POSTGRES_PASSWORD": "x",
        "ALLOWED_HOSTS": "retain.example.com",
    }

    def resolve(value: str) -> str:
        def one(match: re.Match) -> str:
            name, op, default = match.group(1), match.group(2), match.group(3)
            return required[name] if op == ":?" or name in required else default

        return re.sub(r"\$\{(\w+)(:-|:\?)([^}]*)\}", one, str(value))

    env = {name: resolve(value) for name, value in compose["x-app"]["environment"].items()}
    assert env["RETAIN_ENV"] == "production" and env["SECURE_SSL_REDIRECT"] == "1"
    result = check_deploy(tmp_path, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr
